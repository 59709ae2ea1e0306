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
 * return it if it is ready. Otherwise, and when that read fails, reject with
 * the abort's reason. `read` gives `null` at once rather than wait for its
 * server to come back: the abort also bounds that wait.
 *
 * @example
 * ```ts ignore
 * const meta = await storedOnAbort(signal, (s) => waits.waitFor(id, s), () => backend.get(id));
 * ```
 *
 * @param signal the caller's signal (none: `wait` as it is)
 * @param wait the wait, rejecting with `signal.reason` on abort
 * @param read reads the task's stored meta, `null` when none (or the server is unreachable)
 * @returns the ready meta
 */
export async function storedOnAbort(
  signal: AbortSignal | undefined,
  wait: (signal?: AbortSignal) => Promise<ResultMeta>,
  read: () => Promise<ResultMeta | null>,
): Promise<ResultMeta> {
  try {
    return await wait(signal);
  } catch (err) {
    if (!signal?.aborted || err !== signal.reason) throw err;
    const stored = await read().catch(() => null);
    if (stored !== null && READY_STATES.has(stored.status)) return stored;
    throw err;
  }
}
