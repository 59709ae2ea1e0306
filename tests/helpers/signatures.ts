/** Plain task signatures for canvas tests. */

import type { SignatureDict } from "../../protocol.ts";

/**
 * The signature of `task` with task id `id` and positional `args`: no kwargs, not immutable.
 *
 * @example
 * ```ts
 * const chain = chainSignature([taskSig("t.add", "a", 1), taskSig("t.add", "b", 2)]);
 * ```
 */
export function taskSig(task: string, id: string, ...args: unknown[]): SignatureDict {
  return { task, args, kwargs: {}, options: { task_id: id }, subtask_type: null, immutable: false };
}
