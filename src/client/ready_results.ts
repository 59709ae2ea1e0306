/**
 * The ready meta a result handle keeps once it has read one (Celery's
 * `AsyncResult._cache`): a finished task's state does not change, and on
 * rpc:// the backend hands a ready result over to the wait that took it
 * and keeps no copy, so the handle answers `state()`, `info()` and `get()`
 * from its own.
 *
 * @module
 */

import { READY_STATES, type ResultMeta } from "../protocol/result_meta.ts";

/** Ready metas by handle; a handle no longer used takes its meta with it. */
const held = new WeakMap<object, ResultMeta>();

/**
 * Keep `meta` on `handle` when it is a ready state (SUCCESS, FAILURE,
 * REVOKED); other states are not kept (they change).
 *
 * @example
 * ```ts
 * import { heldReady, holdReady } from "./ready_results.ts";
 * const handle = {};
 * holdReady(handle, { status: "SUCCESS", result: 1, traceback: null, children: [], date_done: null, task_id: "t" });
 * heldReady(handle)?.result; // 1
 * ```
 *
 * @param handle the result handle
 * @param meta a meta read for its task
 */
export function holdReady(handle: object, meta: ResultMeta | null | undefined): void {
  if (meta && READY_STATES.has(meta.status)) held.set(handle, meta);
}

/**
 * The ready meta `handle` keeps, if any.
 *
 * @example
 * ```ts
 * import { heldReady } from "./ready_results.ts";
 * heldReady({}); // undefined
 * ```
 *
 * @param handle the result handle
 * @returns the kept meta
 */
export function heldReady(handle: object): ResultMeta | undefined {
  return held.get(handle);
}

/**
 * Drop what `handle` keeps (its result was forgotten).
 *
 * @example
 * ```ts
 * import { dropReady, heldReady } from "./ready_results.ts";
 * const handle = {};
 * dropReady(handle);
 * heldReady(handle); // undefined
 * ```
 *
 * @param handle the result handle
 */
export function dropReady(handle: object): void {
  held.delete(handle);
}
