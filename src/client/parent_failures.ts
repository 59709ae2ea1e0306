/**
 * Waiting for a chain's result while watching the steps before it, as
 * Celery's `AsyncResult.get(follow_parents=True)` does: a failed earlier
 * step ends the wait with its error, also when nothing is ever stored under
 * the later steps (a Python worker failing a chord that is a chain step
 * stores its `ChordError` under the chord's body only).
 *
 * @module
 */

import type { ResultBackend } from "../backend/port.ts";
import { READY_STATES, type ResultMeta } from "../protocol/result_meta.ts";
import { unlessAborted } from "../broker/sleep.ts";
import { followStates, type TaskUpdate, waitSignal } from "./progress.ts";

/** States whose error an earlier step passes on (Celery's `PROPAGATE_STATES`). */
const PROPAGATE: ReadonlySet<string> = new Set(["FAILURE", "REVOKED"]);

/**
 * Read task `readId`'s meta, given up at the timeout or the caller's abort
 * (`null`: not known, as when nothing is stored). A read is not a wait:
 * what a read given up would have found is left to the backend's wait,
 * which returns a stored result also once its signal aborted.
 */
async function readWithin(
  backend: ResultBackend,
  readId: string,
  options: { timeout?: number; signal?: AbortSignal },
): Promise<ResultMeta | null> {
  const wait = waitSignal(options);
  try {
    return await unlessAborted(backend.get(readId), wait.signal);
  } catch (err) {
    if (wait.signal.aborted) return null;
    throw err;
  } finally {
    wait.release();
  }
}

/**
 * Wait for task `id` to be ready, watching the earlier steps `parentIds`
 * (oldest first) meanwhile, by push notification. The outcome is the
 * earliest earlier step in FAILURE or REVOKED once the task failed or as
 * soon as one of them fails; else the task's own ready meta (a task that
 * succeeded had no failed step before it).
 *
 * @example
 * ```ts ignore
 * const meta = await waitFollowingParents(backend, last.id, [first.id, middle.id], {
 *   timeout: 10_000,
 * });
 * if (meta.task_id !== last.id) console.log("an earlier step failed:", meta.result);
 * ```
 *
 * @param backend the result backend
 * @param id the task waited for
 * @param parentIds the earlier steps' task ids, oldest first
 * @param options timeout (ms), abort signal, the task's progress listener, the queue it
 *   was sent to (for the timeout's message), `held` (the ready meta a handle already keeps
 *   for an id, read instead of the backend, whose copy kept for a wait is then released;
 *   default none) and `onReady` (told each ready meta
 *   read, for its handle to keep, the backend then released from keeping it; default none)
 * @returns the deciding ready meta: the task's own, or the earliest failed step's
 * @throws {TimeoutError} when the timeout passes first
 */
export async function waitFollowingParents(
  backend: ResultBackend,
  id: string,
  parentIds: readonly string[],
  options: {
    timeout?: number;
    signal?: AbortSignal;
    onProgress?: (u: TaskUpdate) => void;
    queue?: string;
    held?: (id: string) => ResultMeta | undefined;
    onReady?: (id: string, meta: ResultMeta) => void;
  },
): Promise<ResultMeta> {
  const held = options.held ?? (() => undefined);
  const readOrHeld = async (readId: string, within: { timeout?: number; signal?: AbortSignal }) => {
    const kept = held(readId);
    // Its handle's get() takes it: a copy the backend keeps for a wait (rpc://) is released.
    if (kept) {
      backend.release?.(readId);
      return kept;
    }
    const meta = await readWithin(backend, readId, within);
    if (meta && READY_STATES.has(meta.status)) {
      options.onReady?.(readId, meta);
      backend.release?.(readId);
    }
    return meta;
  };
  // A step that succeeded had no failed step before it (a chain stops at a failure).
  const started = performance.now();
  const left = () =>
    options.timeout === undefined
      ? undefined
      : Math.max(0, options.timeout - (performance.now() - started));
  const stored = await readOrHeld(id, options);
  if (stored?.status === "SUCCESS") return stored;
  if (stored && PROPAGATE.has(stored.status)) {
    // Ready already (its wait may have taken it): the earliest failed step decides.
    const rest = { timeout: left(), signal: options.signal };
    const metas = await Promise.all(parentIds.map((p) => readOrHeld(p, rest)));
    return metas.find((m) => m && PROPAGATE.has(m.status)) ?? stored;
  }
  const timeout = left();
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  /** Ready metas of earlier steps, as their waits end. */
  const ready = new Map<string, ResultMeta>();
  const { promise: parentFailed, resolve: onParentFailed } = Promise.withResolvers<ResultMeta>();
  const onParent = (parentId: string, meta: ResultMeta) => {
    ready.set(parentId, meta);
    options.onReady?.(parentId, meta);
    if (PROPAGATE.has(meta.status)) onParentFailed(meta);
  };
  for (const parentId of parentIds) {
    const kept = held(parentId);
    if (kept) {
      backend.release?.(parentId);
      onParent(parentId, kept);
    } else {
      backend.waitFor(parentId, stop.signal).then((meta) => onParent(parentId, meta), () => {});
    }
  }
  try {
    const own = followStates(
      backend,
      id,
      { timeout, signal, queue: options.queue },
      options.onProgress,
    )
      .then((meta) => {
        options.onReady?.(id, meta);
        return meta;
      });
    const first = await Promise.race([own, parentFailed]);
    if (first.status === "SUCCESS") return first; // only the task's own wait ends in SUCCESS
    // The earliest failed step decides, whichever wait ended first: read the
    // steps whose waits have not ended yet (their first read may be in flight);
    // one whose read the timeout or an abort cut off leaves the task's own failure to decide.
    const rest = { timeout: left(), signal: options.signal };
    const metas = await Promise.all(parentIds.map((p) => ready.get(p) ?? readOrHeld(p, rest)));
    return metas.find((m) => m && PROPAGATE.has(m.status)) ?? first;
  } finally {
    stop.abort();
  }
}
