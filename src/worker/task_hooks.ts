/**
 * Task hooks and task signals around one run, where Celery's tracer calls
 * them (in the pool process; here, where the task runs):
 *
 * - before the handler: the `taskPrerun` signal;
 * - success: `onSuccess`, then `afterReturn("SUCCESS")`, then `taskPostrun`;
 * - failure: `onFailure`, the `taskFailure` signal, `afterReturn("FAILURE")`,
 *   then `taskPostrun`;
 * - retry: `onRetry`, then `taskPostrun` (no `afterReturn`, as in Celery);
 * - revoked after `taskPrerun`, before the handler (not run): `taskPostrun`
 *   with state `REVOKED` only, so that every `taskPrerun` has its
 *   `taskPostrun` (Celery sends neither for a task revoked before it runs).
 *
 * Unlike Celery's, they run before the worker stores the result (the main
 * thread stores it after the run). An error a hook or a listener throws is
 * logged and changes nothing.
 *
 * @module
 */

import { reportHookError, type Signals, type TaskRunInfo } from "../client/signals.ts";
import type { Task } from "../client/task.ts";
import { lazyLogger } from "../client/lazy_logger.ts";
import { ExitCalled } from "./exit_called.ts";

// Lazy: this module runs in task Web Workers, which load LogTape only when something logs.
const log = lazyLogger(["celeriac", "worker"]);

/**
 * The hooks of one run.
 *
 * @example
 * ```ts ignore
 * const hooks = runHooks(task, info, signals); // null when nothing is registered
 * await hooks?.prerun();
 * ```
 */
export interface RunHooks {
  /** Before the handler runs. */
  prerun(): Promise<void>;
  /** After it returned. */
  success(value: unknown): Promise<void>;
  /** After it threw (the task fails). */
  failure(error: unknown, traceback: string | null): Promise<void>;
  /** When the task is to be retried. */
  retry(cause: unknown): Promise<void>;
  /** Revoked after its `taskPrerun`, before the handler: not run; its `taskPostrun` (`REVOKED`). */
  revoked(): Promise<void>;
}

async function call(where: string, fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ExitCalled) {
      // The handler had returned or thrown: its outcome stands, as Celery stores a result before
      // its after_return. The thread ends all the same (exit_guard.ts).
      log.warn("{where} called {how}: its Web Worker ends; the task's outcome stands", {
        where,
        how: err.how,
      });
      return;
    }
    reportHookError(where, err);
  }
}

/**
 * The hooks of one run of `task`, or `null` when it has none and no task
 * signal has a listener (the common case costs nothing).
 *
 * @example
 * ```ts ignore
 * const hooks = runHooks(task, { id, name, args, kwargs, retries }, app.signals);
 * ```
 *
 * @param task the task
 * @param info what hooks and signals are told about the run
 * @param signals the app's signals, if known
 * @returns the hooks, or `null`
 */
export function runHooks(
  task: Task<never, unknown>,
  info: TaskRunInfo,
  signals: Signals | undefined,
): RunHooks | null {
  const o = task.options;
  const listened = signals !== undefined &&
    (signals.has("taskPrerun") || signals.has("taskPostrun") || signals.has("taskFailure"));
  if (!listened && !o.onSuccess && !o.onFailure && !o.onRetry && !o.afterReturn) return null;
  const at = `${info.name}[${info.id}]`;
  const postrun = (state: string, value: unknown) =>
    signals?.emit("taskPostrun", { ...info, state, value }) ?? Promise.resolve();
  return {
    prerun: () => signals?.emit("taskPrerun", info) ?? Promise.resolve(),
    async success(value) {
      if (o.onSuccess) await call(`onSuccess of ${at}`, () => o.onSuccess!(value, info));
      if (o.afterReturn) {
        await call(`afterReturn of ${at}`, () => o.afterReturn!("SUCCESS", value, info));
      }
      await postrun("SUCCESS", value);
    },
    async failure(error, traceback) {
      if (o.onFailure) {
        await call(`onFailure of ${at}`, () => o.onFailure!(error, { ...info, traceback }));
      }
      await signals?.emit("taskFailure", { ...info, error, traceback });
      if (o.afterReturn) {
        await call(`afterReturn of ${at}`, () => o.afterReturn!("FAILURE", error, info));
      }
      await postrun("FAILURE", error);
    },
    async retry(cause) {
      if (o.onRetry) await call(`onRetry of ${at}`, () => o.onRetry!(cause, info));
      await postrun("RETRY", cause);
    },
    revoked: () => postrun("REVOKED", null),
  };
}
