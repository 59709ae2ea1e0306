/**
 * What replaces a task that calls `ctx.replace(sig)` (Celery's
 * `Task.replace`): the signature, made to finish where the task would
 * have — under the task's id, in its group or chord, with its callbacks,
 * errbacks and the rest of its chain. Pure: the task applies it.
 *
 * @module
 */

import type { Embed, SignatureDict } from "./message.ts";
import { addLinks, chainSignature, chordSignature, kind } from "./canvas_shape.ts";
import { chainSteps, withPlaced } from "./canvas_nesting.ts";

/**
 * The task being replaced: what its replacement inherits.
 *
 * @example
 * ```ts
 * import type { ReplacedTask } from "./canvas_replace.ts";
 * const task: ReplacedTask = {
 *   id: "a1",
 *   group: null,
 *   groupIndex: null,
 *   nesting: 0,
 *   embed: { callbacks: null, errbacks: null, chain: null, chord: null },
 * };
 * ```
 */
export interface ReplacedTask {
  /** Its id: the replacement's final task takes it, so the caller's result handle still holds. */
  id: string;
  /** Its group id, if it is a group or chord member. */
  group: string | null;
  /** Its position in its chord header, if any. */
  groupIndex: number | null;
  /**
   * How many times it was itself a replacement (its `replaced_task_nesting`);
   * the replacement gets one more. Default 0.
   */
  nesting?: number;
  /** Its callbacks, errbacks, remaining chain and chord. */
  embed: Embed;
}

/** `celery.accumulate` with `index=0`: the body a replacing group becomes a chord with. */
const ACCUMULATE: SignatureDict = {
  task: "celery.accumulate",
  args: [],
  kwargs: { index: 0 },
  options: {},
  subtask_type: null,
  immutable: false,
};

/**
 * The signature that replaces `task`, as Celery 5.2's `Task.replace` builds
 * it: a group becomes a chord whose body (`celery.accumulate`) returns the
 * group's results; the task's callbacks and errbacks are linked to it; its
 * final task takes the task's id, group, group index and chord, and a
 * `replaced_task_nesting` header one above the task's; the rest of
 * the task's chain follows it.
 *
 * @example
 * ```ts ignore
 * const task = { id, group: null, groupIndex: null, nesting: 0, embed };
 * const dict = replacementSignature(sig.toDict(), task);
 * ```
 *
 * @param sig the replacing signature (any canvas)
 * @param task the task it replaces
 * @returns the signature to apply
 * @throws {TypeError} for a signature that is part of a chord, or an empty chain
 */
export function replacementSignature(sig: SignatureDict, task: ReplacedTask): SignatureDict {
  if (sig.options.chord !== undefined && sig.options.chord !== null) {
    throw new TypeError(
      `Task ${task.id} cannot be replaced by ${sig.task}: a signature replacing a task must not ` +
        "be part of a chord",
    );
  }
  const k = kind(sig);
  if (k === "chain" && chainSteps(sig).length === 0) {
    throw new TypeError(`Task ${task.id} cannot be replaced by an empty chain`);
  }
  let s = k === "group" ? chordSignature(sig, ACCUMULATE) : sig;
  s = addLinks(addLinks(s, "link", task.embed.callbacks), "link_error", task.embed.errbacks);
  const place: Record<string, unknown> = { task_id: task.id };
  if (task.group !== null) place.group_id = task.group;
  if (task.groupIndex !== null) place.group_index = task.groupIndex;
  if (task.embed.chord) place.chord = task.embed.chord;
  s = withPlaced(s, (placed) => {
    const headers = placed.options.headers;
    const nesting = { replaced_task_nesting: (task.nesting ?? 0) + 1 };
    return {
      ...placed,
      options: {
        ...placed.options,
        ...place,
        headers: { ...(headers && typeof headers === "object" ? headers : {}), ...nesting },
      },
    };
  });
  const rest = task.embed.chain;
  return rest?.length ? chainSignature([s, ...rest.slice().reverse()]) : s;
}
