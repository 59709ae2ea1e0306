/**
 * Reading a nested canvas as Celery does: a chain's steps flattened (and
 * `group | next` made a chord), a group's members flattened, a group of one
 * unrolled, a chord header's leaves and size, and the step a canvas's result
 * comes from. Pure; the signature dicts themselves are built and read in
 * canvas_shape.ts.
 *
 * @module
 */

import type { SignatureDict } from "./message.ts";
import {
  addLinks,
  chordParts,
  chordSignature,
  chunksToGroup,
  kind,
  optionText,
  partOptions,
  tasksOf,
} from "./canvas_shape.ts";

/**
 * Flatten nested chains, replace a group of one by its member (except the
 * second step after a first group, see {@link keepsGroupOfOne}) and upgrade
 * `group | next` to a chord, as Celery does.
 * A nested chain's errbacks go on each of its steps and its callbacks on its
 * last (Celery's `unchain_tasks`, and `Task.replace` for the callbacks), so
 * flattening keeps them.
 *
 * @example
 * ```ts
 * import { chainSteps } from "./canvas_nesting.ts";
 * import { chainSignature } from "./canvas_shape.ts";
 * const t = { task: "t.add", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * chainSteps(chainSignature([t, chainSignature([t, t])])).length; // 3
 * ```
 */
export function chainSteps(sig: SignatureDict): SignatureDict[] {
  const flat: SignatureDict[] = [];
  const tasks = tasksOf(sig);
  for (const [i, step] of tasks.entries()) {
    // A group of one is its member (Celery's maybe_unroll_group): a list built at run time
    // that holds one item gives that item's result, not a list of it. Except as the second
    // step after a first step that is a group: Celery's chain() then makes the two one chord
    // (`group | group`) whose body is that group of one, kept a group.
    const t = i === 1 && keepsGroupOfOne(tasks[0]) ? step : unrollGroup(step);
    // A loop, not push(...): a nested chain may have more steps than a call takes arguments.
    if (kind(t) === "chain") {
      const steps = chainSteps(t);
      const last = steps.length - 1;
      for (let i = 0; i <= last; i++) {
        const step = addLinks(steps[i], "link_error", t.options.link_error);
        flat.push(i === last ? addLinks(step, "link", t.options.link) : step);
      }
    } else if (kind(t) === "chunks") flat.push(chunksToGroup(t));
    else flat.push(t);
  }
  // From the end, as Celery's prepare_steps: a group followed by a step is a chord whose body is
  // that step as already built (a chord when it is a group followed by more), so a run of groups
  // and the step after them nest (before, only two did: a third group's next step never ran).
  const reversed: SignatureDict[] = [];
  for (let i = flat.length - 1; i >= 0; i--) {
    const step = flat[i];
    const last = reversed.length - 1;
    if (kind(step) === "group" && last >= 0) {
      reversed[last] = chordSignature(step, reversed[last], {});
    } else reversed.push(step);
  }
  return reversed.reverse();
}

/**
 * Whether a chain whose first step is `first` keeps a group of one as its
 * second step: when `first` is a group of several members (Celery's
 * `chain(g1, g2)` is `g1 | g2`, a chord with `g2` as its body), not a
 * chain, chord or chunks.
 *
 * @example
 * ```ts
 * import { keepsGroupOfOne } from "./canvas_nesting.ts";
 * import { groupSignature } from "./canvas_shape.ts";
 * const t = { task: "t.add", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * keepsGroupOfOne(groupSignature([t, t])); // true
 * keepsGroupOfOne(groupSignature([t])); // false
 * ```
 */
export function keepsGroupOfOne(first: SignatureDict): boolean {
  return kind(unrollGroup(first)) === "group";
}

/**
 * A signature with the step its result comes from replaced by `fn(step)`:
 * for a chain, its last step, and for a chord, its body, nested ones walked
 * through; any other signature is that step itself.
 *
 * @example
 * ```ts
 * import { withPlaced } from "./canvas_nesting.ts";
 * import { chainSignature } from "./canvas_shape.ts";
 * const t = { task: "t.add", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * withPlaced(chainSignature([t, t]), (last) => ({ ...last, args: [1] }));
 * ```
 */
export function withPlaced(
  sig: SignatureDict,
  fn: (placed: SignatureDict) => SignatureDict,
): SignatureDict {
  if (kind(sig) === "chain") {
    const steps = chainSteps(sig);
    steps[steps.length - 1] = withPlaced(steps[steps.length - 1], fn);
    return { ...sig, kwargs: { ...sig.kwargs, tasks: steps } };
  }
  if (kind(sig) === "chord") {
    const { header, body } = chordParts(sig);
    return { ...sig, kwargs: { ...sig.kwargs, header, body: withPlaced(body, fn) } };
  }
  return fn(sig);
}

/**
 * Options applied to a signature; for a chain, to its last step, and for a
 * chord, to its body (where the result is): as Celery's `chord.freeze`, a
 * chord that is a group member or a chord header member joins through its body.
 *
 * @example
 * ```ts
 * import { withOptions } from "./canvas_nesting.ts";
 * const t = { task: "t.add", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * withOptions(t, { group_id: "g" }).options; // { group_id: "g" }
 * ```
 */
export function withOptions(sig: SignatureDict, extra: Record<string, unknown>): SignatureDict {
  return withPlaced(sig, (s) => ({ ...s, options: { ...s.options, ...extra } }));
}

/**
 * The members of a chord header, nested groups and chunks flattened (a
 * chord member stays one member: its body joins the outer chord).
 *
 * @example
 * ```ts
 * import { headerLeaves } from "./canvas_nesting.ts";
 * import { groupSignature } from "./canvas_shape.ts";
 * const t = { task: "t.add", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * headerLeaves(groupSignature([t, groupSignature([t])])).length; // 2
 * ```
 */
export function headerLeaves(header: SignatureDict): SignatureDict[] {
  const out: SignatureDict[] = [];
  for (const t of tasksOf(header)) {
    const k = kind(t);
    // A loop, not push(...): a member group may have more tasks than a call takes arguments.
    if (k === "group" || k === "chunks") {
      for (const leaf of headerLeaves(k === "group" ? t : chunksToGroup(t))) out.push(leaf);
    } else out.push(t);
  }
  return out;
}

/**
 * How many member results a chord header member adds to its chord, as
 * Celery's `chord._descend`: a task 1, a group the sum of its members, a
 * chain its last step that adds any, a chord its body.
 *
 * @example
 * ```ts
 * import { chordSize } from "./canvas_nesting.ts";
 * import { chainSignature, groupSignature } from "./canvas_shape.ts";
 * const t = { task: "t.add", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * chordSize(chainSignature([t, groupSignature([t, t])])); // 2
 * ```
 */
export function chordSize(sig: SignatureDict): number {
  switch (kind(sig)) {
    case "group":
    case "chunks":
      return tasksOf(kind(sig) === "group" ? sig : chunksToGroup(sig))
        .reduce((n, t) => n + chordSize(t), 0);
    case "chain": {
      const steps = chainSteps(sig);
      for (let i = steps.length - 1; i >= 0; i--) {
        const n = chordSize(steps[i]);
        if (n > 0) return n;
      }
      return 0;
    }
    case "chord":
      return chordSize(chordParts(sig).body);
    default:
      return 1;
  }
}

/**
 * The options a member of `group` gets when the group is itself a chord
 * header member (the last step of a chain in a chord's header, where
 * `withOptions` put the chord's `chord` and `group_id`): that chord and
 * group id, and its place `index` in the group, as Celery's
 * `group._freeze_unroll`; null for any other group.
 *
 * @example
 * ```ts
 * import { chordMemberOptions } from "./canvas_nesting.ts";
 * import { groupSignature } from "./canvas_shape.ts";
 * chordMemberOptions(groupSignature([]), 0); // null
 * ```
 */
export function chordMemberOptions(
  group: SignatureDict,
  index: number,
): Record<string, unknown> | null {
  const { chord, group_id } = group.options;
  if (chord === null || chord === undefined || !optionText(group_id)) return null;
  return { group_id, group_index: index, chord };
}

/**
 * `member` taking what applying `group` gives each member: the group's
 * options over its own, the group's links after its own.
 */
function asGroupMember(member: SignatureDict, group: SignatureDict): SignatureDict {
  const { link, link_error, ...rest } = partOptions(group.options);
  const placed = Object.keys(rest).length
    ? { ...member, options: { ...member.options, ...rest } }
    : member;
  return addLinks(addLinks(placed, "link", link), "link_error", link_error);
}

/**
 * Whether `sig` is a group of exactly one member, which a chain step runs
 * as that member (Celery's `maybe_unroll_group`).
 *
 * @example
 * ```ts
 * import { isGroupOfOne } from "./canvas_nesting.ts";
 * import { groupSignature } from "./canvas_shape.ts";
 * const t = { task: "t.add", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * isGroupOfOne(groupSignature([t])); // true
 * ```
 */
export function isGroupOfOne(sig: SignatureDict): boolean {
  return kind(sig) === "group" && tasksOf(sig).length === 1;
}

/**
 * A group of exactly one member as that member (with the group's options
 * and links), as Celery's `maybe_unroll_group` does for a chain step; any
 * other signature as it is.
 *
 * @example
 * ```ts
 * import { unrollGroup } from "./canvas_nesting.ts";
 * import { groupSignature } from "./canvas_shape.ts";
 * const t = { task: "t.add", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * unrollGroup(groupSignature([t])).task; // "t.add"
 * ```
 */
export function unrollGroup(sig: SignatureDict): SignatureDict {
  return isGroupOfOne(sig) ? asGroupMember(tasksOf(sig)[0], sig) : sig;
}

/**
 * A group's members with each member group's members in its place, in
 * order, recursively (Celery's `group._prepared`); a member group's
 * options and links go on its members.
 *
 * @example
 * ```ts
 * import { flatMembers } from "./canvas_nesting.ts";
 * import { groupSignature } from "./canvas_shape.ts";
 * const t = { task: "t.add", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * flatMembers(groupSignature([groupSignature([t, t]), t])).length; // 3
 * ```
 */
export function flatMembers(group: SignatureDict): SignatureDict[] {
  const out: SignatureDict[] = [];
  for (const t of tasksOf(group)) {
    // A loop, not push(...): a member group may have more tasks than a call takes arguments.
    if (kind(t) === "group") { for (const m of flatMembers(t)) out.push(asGroupMember(m, t)); }
    else out.push(t);
  }
  return out;
}
