/**
 * Which exception a failed run is stored with, when the pool caused it:
 * a soft time limit that fired, or a permission the task's sandbox lacks.
 *
 * @module
 */

import { SoftTimeLimitExceeded } from "../client/worker_errors.ts";
import { permissionDenied } from "./permission_denied.ts";

/**
 * The error to store for what a task threw: its soft time limit's
 * `SoftTimeLimitExceeded` when that limit fired before the handler threw
 * (whatever it threw), a `PermissionDenied` for Deno's permission
 * errors, else what it threw. The traceback still shows what was thrown.
 *
 * @example
 * ```ts
 * import { SoftTimeLimitExceeded } from "@celeriac/celeriac";
 * import { reportedError } from "@celeriac/celeriac/worker";
 * const ctl = new AbortController();
 * ctl.abort(new SoftTimeLimitExceeded({ seconds: 5 }));
 * const stored = reportedError(new DOMException("aborted", "AbortError"), "t.slow", ctl.signal);
 * (stored as Error).name; // "SoftTimeLimitExceeded"
 * ```
 *
 * @param err what the handler threw
 * @param task the task's name and id, for messages
 * @param signal the run's AbortSignal
 * @param sandboxed whether the task ran in a permission sandbox
 * @returns the error to store
 */
export function reportedError(
  err: unknown,
  task: string,
  signal: AbortSignal,
  sandboxed = false,
): unknown {
  if (signal.aborted && signal.reason instanceof SoftTimeLimitExceeded) return signal.reason;
  return permissionDenied(err, task, sandboxed);
}
