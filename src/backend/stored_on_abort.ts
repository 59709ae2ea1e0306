/**
 * What an aborted wait for a result ends with: the ready result when one is
 * stored, else the abort. As Celery's `AsyncResult.get(timeout=0)` returns
 * a finished task's result, an abort (a timeout) bounds the wait for a
 * result to be stored, not the reading of one stored already, which may
 * take longer than the timeout (a big result, a timeout of 0).
 *
 * @module
 */

import { READY_STATES, type ResultMeta } from "../protocol/result_meta.ts";

/**
 * Wait by `wait`; when it ends because `signal` aborted (before it began,
 * or while it read or waited), read the task's result once with `read` and
 * return it if it is ready. Otherwise reject with the abort's reason, having
 * handed what was read to `onState` (a PENDING meta when nothing is stored),
 * so that a caller saying why its wait ended needs no read of its own; when
 * the read fails, `onState` is not called. `read` gives `undefined` at once
 * rather than wait for its server to come back: the abort also bounds that
 * wait.
 *
 * @example
 * ```ts ignore
 * const meta = await storedOnAbort(id, signal, (s) => waits.waitFor(id, s), () => backend.get(id));
 * ```
 *
 * @param taskId the task (for the PENDING meta)
 * @param signal the caller's signal (none: `wait` as it is)
 * @param wait the wait, rejecting with `signal.reason` on abort
 * @param read reads the task's stored meta: `null` when none is stored, `undefined` when
 *   the server is unreachable
 * @param onState told the state read when the abort ended the wait and the task is not ready
 * @returns the ready meta
 */
export async function storedOnAbort(
  taskId: string,
  signal: AbortSignal | undefined,
  wait: (signal?: AbortSignal) => Promise<ResultMeta>,
  read: () => Promise<ResultMeta | null | undefined>,
  onState?: (meta: ResultMeta) => void,
): Promise<ResultMeta> {
  try {
    return await wait(signal);
  } catch (err) {
    if (!signal?.aborted || err !== signal.reason) throw err;
    const stored = await read().catch(() => undefined);
    if (stored && READY_STATES.has(stored.status)) return stored;
    if (stored !== undefined) onState?.(stored ?? pendingMeta(taskId));
    throw err;
  }
}

/** What Celery's backends give for a task with nothing stored: PENDING, no result. */
function pendingMeta(taskId: string): ResultMeta {
  return {
    status: "PENDING",
    result: null,
    traceback: null,
    children: [],
    date_done: null,
    task_id: taskId,
  };
}
