/**
 * Custom task states (`ctx.updateState`, Celery's `update_state`): the
 * task reports a state such as `PROGRESS` with a meta object, stored as the
 * task's result meta (`status: "PROGRESS"`, `result: meta`) so that a
 * Python `AsyncResult.info` or a Celeriac `AsyncResult.onProgress` reads it.
 *
 * The task runs in a Web Worker; the store goes through the main thread's
 * result backend (which knows the task's `reply_to` for rpc://).
 *
 * @module
 */

import type { ResultBackend } from "../backend/port.ts";
import type { StateUpdate } from "../client/task_options.ts";
import { encodeResultMeta, READY_STATES } from "../protocol/result_meta.ts";
import type { TaskRequest } from "../protocol/task_request.ts";

/**
 * The `ctx.updateState` of one running task.
 *
 * @example
 * ```ts ignore
 * const updateState = stateUpdater(req, store);
 * await updateState({ state: "PROGRESS", meta: { done: 1, total: 10 } });
 * ```
 *
 * @param req the running task: `seq`, `id`, group and parent ids
 * @param store where states go; `undefined` when the task runs outside a worker (nothing is stored)
 * @returns the function tasks call
 */
export function stateUpdater(
  req: { seq: number; id: string; info: { group: string | null; parentId: string | null } },
  store: ((seq: number, status: string, meta: string) => Promise<void>) | undefined,
): (update: StateUpdate) => Promise<void> {
  return async (update) => {
    if (typeof update === "string") {
      throw new TypeError(
        `updateState takes an object, not Celery's update_state(state, meta): write ` +
          `ctx.updateState({ state: ${JSON.stringify(update)}, meta: { ... } })`,
      );
    }
    const state = update?.state;
    if (typeof state !== "string" || state === "" || state === "PENDING") {
      throw new TypeError(
        `updateState needs a state name such as "PROGRESS", got ${JSON.stringify(state)}`,
      );
    }
    if (READY_STATES.has(state)) {
      throw new TypeError(
        `updateState cannot store ${state}: a task ends by returning (SUCCESS) or throwing ` +
          `(FAILURE); report progress with a state of your own, e.g. "PROGRESS"`,
      );
    }
    const meta = encodeResultMeta({
      taskId: req.id,
      status: state,
      result: update.meta ?? null,
      groupId: req.info.group,
      parentId: req.info.parentId,
    });
    await store?.(req.seq, state, meta);
  };
}

/**
 * Store a state reported by a running task, on the worker's main thread.
 *
 * @example
 * ```ts ignore
 * onState: (seq, status, meta) => storeState(backend, running.get(seq)?.req, status, meta),
 * ```
 *
 * @param backend the worker's result backend (`null`: nothing is stored)
 * @param req the running task's request, `undefined` when it no longer runs
 * @param status the state
 * @param meta the encoded meta
 */
export async function storeState(
  backend: ResultBackend | null,
  req: TaskRequest | undefined,
  status: string,
  meta: string,
): Promise<void> {
  if (!backend || !req) return;
  await backend.store([{ taskId: req.id, status, meta, replyTo: req.replyTo }]);
}
