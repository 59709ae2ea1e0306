/**
 * Deno's permission error inside task code, told as a
 * {@link PermissionDenied} that says what to change. Apart from
 * `sandboxes.ts` (which re-exports it): each pool Web Worker reports its
 * tasks' errors with it, and `sandboxes.ts` imports `node:path`, whose
 * Node compatibility scripts a Web Worker would then compile (36 of its
 * 54, with Node's `assert`, `util` and `buffer`).
 *
 * @module
 */

import { PermissionDenied } from "../client/worker_errors.ts";

/**
 * Turn Deno's permission error inside task code into a
 * {@link PermissionDenied} naming the permission, the task and what to
 * change (the sandbox's permissions, or the worker's flags when the task
 * has the worker's own); other errors are returned as they are.
 *
 * @example
 * ```ts
 * import { permissionDenied } from "@celeriac/celeriac/worker";
 * const err = new Deno.errors.NotCapable(
 *   'Requires env access to "HOME", run again with the --allow-env flag',
 * );
 * (permissionDenied(err, "t.peek") as Error).message;
 * // 'Task t.peek is not allowed env access to "HOME": start the worker with --allow-env=HOME …'
 * ```
 *
 * @param err what the task threw
 * @param task the task name (and id) for the message
 * @param sandboxed whether the task ran in a permission sandbox (else with the worker's own)
 * @returns the error to report
 */
export function permissionDenied(err: unknown, task: string, sandboxed = false): unknown {
  // Deno 2's PermissionDenied is the OS refusing (EACCES), not its permission
  // system: no flag helps, so it is returned as it is. A dynamic import()
  // refused is a TypeError with Deno's permission message.
  const denied = err instanceof Deno.errors.NotCapable ||
    (err instanceof Error && /^Requires \w+ access/.test(err.message));
  if (!denied) return err;
  const m = /Requires (\w+) access(?: to (.+?))?(?:, run again|, specify|\.?$)/.exec(err.message);
  return new PermissionDenied({
    permission: m?.[1] ?? "unknown",
    target: m?.[2] ?? null,
    task,
    sandboxed,
  });
}
