/**
 * App-wide signals, as Celery's (`task_prerun`, `task_postrun`,
 * `task_failure`, `worker_ready`, `worker_shutdown`) in camelCase:
 * typed listeners connected with `app.on(name, listener)`.
 *
 * Task signals run where the task runs (the worker's Web Worker, as
 * Celery's run in the pool process); worker signals run in the worker's
 * main thread. Connect listeners in the module that defines the app, so
 * that every Web Worker importing it has them.
 *
 * @module
 */

import { closestName } from "./closest_name.ts";
import { lazyLogger } from "./lazy_logger.ts";
import type { TaskState } from "../protocol/result_meta.ts";

const log = lazyLogger(["celeriac", "signals"]);

/**
 * What task signals and task hooks say about the task.
 *
 * @example
 * ```ts
 * import type { TaskRunInfo } from "@celeriac/celeriac";
 * const describe = (t: TaskRunInfo) => `${t.name}[${t.id}] try ${t.retries + 1}`;
 * ```
 */
export interface TaskRunInfo {
  /** The task id. */
  readonly id: string;
  /** The task name. */
  readonly name: string;
  /** Positional arguments as received. */
  readonly args: readonly unknown[];
  /** Keyword arguments as received. */
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** How many times it was retried before this run. */
  readonly retries: number;
}

/**
 * Each signal's payload, by name.
 *
 * @example
 * ```ts
 * import type { SignalPayloads } from "@celeriac/celeriac";
 * const onPostrun = (p: SignalPayloads["taskPostrun"]) => console.log(p.name, p.state);
 * ```
 */
export interface SignalPayloads {
  /** Before a task's handler runs [`task_prerun`]. */
  taskPrerun: TaskRunInfo;
  /** After a task ran, whatever the outcome [`task_postrun`]; `value` is the return value or the error. */
  taskPostrun: TaskRunInfo & { readonly state: TaskState; readonly value: unknown };
  /** After a task failed [`task_failure`]. */
  taskFailure: TaskRunInfo & { readonly error: unknown; readonly traceback: string | null };
  /** The worker consumes its queues [`worker_ready`]. */
  workerReady: { readonly hostname: string; readonly queues: readonly string[] };
  /** The worker stopped (warm or cold shutdown) [`worker_shutdown`]. */
  workerShutdown: { readonly hostname: string };
}

/**
 * A signal's name.
 *
 * @example
 * ```ts
 * import type { SignalName } from "@celeriac/celeriac";
 * const name: SignalName = "taskFailure";
 * ```
 */
export type SignalName = keyof SignalPayloads;

/**
 * A listener of signal `N`; may be async (the worker waits for it).
 *
 * @example
 * ```ts
 * import type { SignalListener } from "@celeriac/celeriac";
 * const audit: SignalListener<"taskFailure"> = ({ name, id, error }) => {
 *   console.error(`${name}[${id}] failed:`, error);
 * };
 * ```
 */
export type SignalListener<N extends SignalName> = (
  payload: SignalPayloads[N],
) => void | Promise<void>;

/** Every signal {@link Signals.connect} takes, in {@link SignalPayloads}' order. */
const SIGNAL_NAMES: readonly string[] = [
  "taskPrerun",
  "taskPostrun",
  "taskFailure",
  "workerReady",
  "workerShutdown",
] satisfies SignalName[];

/** Celery's signals that have no listener here, and what to use instead. */
const INSTEAD: Record<string, string> = {
  taskSuccess: 'taskPostrun (state "SUCCESS") or a task\'s onSuccess',
  taskRetry: "a task's onRetry",
};

function unknownSignal(name: string): TypeError {
  const camel = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const near = SIGNAL_NAMES.includes(camel) ? camel : closestName(name, SIGNAL_NAMES);
  const instead = INSTEAD[camel];
  return new TypeError(
    `Unknown signal "${name}"${
      instead ? `: Celery's ${name} has no listener here; use ${instead}` : ""
    }${near ? ` (did you mean "${near}"?)` : ""}. The signals are ${SIGNAL_NAMES.join(", ")}`,
  );
}

/**
 * Report an error thrown by a listener or a task hook. In a Web Worker,
 * where the command line's log set-up does not reach, it goes to stderr.
 *
 * @example
 * ```ts
 * reportHookError("onSuccess of tasks.add[1]", new Error("listener failed"));
 * ```
 *
 * @param where what failed
 * @param err the error
 */
export function reportHookError(where: string, err: unknown): void {
  const text = err instanceof Error ? err.stack ?? err.message : String(err);
  if ("WorkerGlobalScope" in globalThis) {
    // deno-lint-ignore no-console
    console.error(`celeriac: ${where} failed: ${text}`);
  } else log.error("{where} failed: {error}", { where, error: text });
}

/**
 * The signal listeners of an app.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const off = app.on("taskPrerun", ({ name, id }) => console.log("starting", name, id));
 * app.signals.has("taskPrerun"); // true
 * off();
 * ```
 */
export class Signals {
  readonly #listeners = new Map<SignalName, Set<SignalListener<never>>>();

  /**
   * Connect a listener.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const off = app.signals.connect("workerReady", ({ hostname }) => console.log(hostname, "up"));
   * ```
   *
   * @param name the signal
   * @param listener called with its payload
   * @returns a function that disconnects it
   */
  connect<N extends SignalName>(name: N, listener: SignalListener<N>): () => void {
    if (!SIGNAL_NAMES.includes(name)) throw unknownSignal(name);
    if (typeof listener !== "function") {
      throw new TypeError(`A listener of ${name} must be a function`);
    }
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, set = new Set());
    set.add(listener as SignalListener<never>);
    return () => {
      set.delete(listener as SignalListener<never>);
    };
  }

  /**
   * Whether any listener is connected to the signal.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * if (app.signals.has("taskPostrun")) console.log("someone listens");
   * ```
   *
   * @param name the signal
   * @returns true when one is
   */
  has(name: SignalName): boolean {
    return (this.#listeners.get(name)?.size ?? 0) > 0;
  }

  /**
   * Call the listeners in the order they were connected, waiting for each;
   * an error thrown by one is reported (logged) and does not stop the others
   * — as Celery's `Signal.send` does.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * await app.signals.emit("workerShutdown", { hostname: "celeriac@web1" });
   * ```
   *
   * @param name the signal
   * @param payload what listeners receive
   */
  async emit<N extends SignalName>(name: N, payload: SignalPayloads[N]): Promise<void> {
    const set = this.#listeners.get(name);
    if (!set?.size) return;
    for (const listener of [...set] as SignalListener<N>[]) {
      try {
        await listener(payload);
      } catch (err) {
        reportHookError(`a ${name} listener`, err);
      }
    }
  }
}
