/**
 * Plan what a canvas (chain, group, chord, map, starmap, chunks) publishes,
 * exactly as Celery 5.2 does: which task messages, with which ids, `group`
 * and `group_index` headers, `embed.chain` (reversed) and `embed.chord`, and
 * which chord sizes the result backend must know first. Pure: the client
 * and the worker publish the plan. Building and reading canvas signature
 * dicts is in canvas_shape.ts, reading nested ones in canvas_nesting.ts.
 *
 * @module
 */

import type { SignatureDict } from "./message.ts";
import type { CanvasPlan, CanvasSend, ChordSize, PlanOptions } from "./canvas_types.ts";
import { decodeSignature, encodeSignature, type ResultTuple } from "./signature.ts";
import {
  addLinks,
  chordParts,
  chordSignature,
  chunksToGroup,
  kind,
  optionText,
  partOptions,
  sigList,
  tasksOf,
} from "./canvas_shape.ts";
import {
  chainSteps,
  chordMemberOptions,
  chordSize,
  flatMembers,
  headerLeaves,
  withOptions,
} from "./canvas_nesting.ts";

interface Ctx {
  sends: CanvasSend[];
  sizes: ChordSize[];
  laterChords: boolean;
  newId: () => string;
  replyTo?: string;
  groupIndex: "chord" | "always";
}

/**
 * Assign ids (and reply_to) to a signature and its parts, as Celery's
 * `freeze`. Builds new objects where it writes and shares the rest with
 * `sig` (which it never modifies): copying each level whole made nested
 * canvases cost their size once per level.
 */
function freeze(sig: SignatureDict, ctx: Ctx): SignatureDict {
  const s = encodeSignature(sig);
  switch (kind(s)) {
    case "chain": {
      const steps = chainSteps(s).map((t) => freeze(t, ctx));
      const last = steps[steps.length - 1];
      return {
        ...s,
        kwargs: { ...s.kwargs, tasks: steps },
        options: { ...s.options, task_id: lastId(last) },
      };
    }
    case "chunks":
      return freeze(chunksToGroup(s), ctx);
    case "group": {
      // A chord header member's group takes the chord's id, as its members join that chord.
      const gid = optionText(s.options.task_id) ?? chordGroupId(s) ?? ctx.newId();
      const tasks = flatMembers(s).map((t, i) =>
        freeze(withOptions(t, chordMemberOptions(s, i) ?? { group_id: gid }), ctx)
      );
      return { ...s, kwargs: { ...s.kwargs, tasks }, options: { ...s.options, task_id: gid } };
    }
    case "chord": {
      ctx.laterChords = true;
      const { header, body } = chordParts(s);
      const gid = optionText(header.options.task_id) ?? optionText(s.options.task_id) ??
        ctx.newId();
      const frozenBody = freeze(body, ctx);
      const tasks = tasksOf(header).map((t, i) =>
        freeze(withOptions(t, { chord: frozenBody, group_index: i }), ctx)
      );
      const frozenHeader: SignatureDict = {
        ...header,
        kwargs: { ...header.kwargs, tasks },
        options: {
          ...header.options,
          task_id: gid,
          chord: frozenBody,
          root_id: null,
          parent_id: null,
        },
      };
      return {
        ...s,
        kwargs: { kwargs: s.kwargs.kwargs ?? {}, header: frozenHeader, body: frozenBody },
        options: { ...s.options, task_id: gid },
      };
    }
    default: {
      const options: Record<string, unknown> = { ...s.options };
      options.task_id = optionText(options.task_id) ?? ctx.newId();
      if (ctx.replyTo && options.reply_to === undefined) options.reply_to = ctx.replyTo;
      return { ...s, options: reorderTaskId(options) };
    }
  }
}

/** Celery writes `task_id` and `reply_to` first in a frozen signature's options. */
function reorderTaskId(o: Record<string, unknown>): Record<string, unknown> {
  const { task_id, reply_to, ...rest } = o;
  const out: Record<string, unknown> = { task_id };
  if (reply_to !== undefined) out.reply_to = reply_to;
  return Object.assign(out, rest);
}

function lastId(sig: SignatureDict): string {
  if (kind(sig) === "chord") return lastId(chordParts(sig).body);
  return String(sig.options.task_id);
}

/** The chord's group id, for a group that is a chord header member; else undefined. */
function chordGroupId(group: SignatureDict): string | undefined {
  return chordMemberOptions(group, 0) ? optionText(group.options.group_id) : undefined;
}

function resultOf(frozen: SignatureDict): ResultTuple {
  switch (kind(frozen)) {
    case "group":
      return { id: String(frozen.options.task_id), members: tasksOf(frozen).map(resultOf) };
    case "chord": {
      const { header, body } = chordParts(frozen);
      return { ...resultOf(body), parent: resultOf(header) };
    }
    case "chain": {
      let prev: ResultTuple | null = null;
      for (const step of chainSteps(frozen)) prev = { ...resultOf(step), parent: prev };
      return prev!;
    }
    default:
      return { id: String(frozen.options.task_id) };
  }
}

interface Call {
  args: readonly unknown[];
  kwargs: Readonly<Record<string, unknown>>;
  chain: readonly SignatureDict[] | null;
  options: Readonly<Record<string, unknown>>;
}

function send(sig: SignatureDict, call: Call, ctx: Ctx): ResultTuple {
  const o: Record<string, unknown> = { ...sig.options, ...call.options };
  const id = optionText(o.task_id) ?? ctx.newId();
  const ownChain = sigList(o.chain, `${sig.task}.options.chain`);
  const chain = call.chain?.length ? [...(ownChain ?? []), ...call.chain] : ownChain;
  const chord = o.chord === null || o.chord === undefined
    ? null
    : decodeSignature(o.chord, `${sig.task}.options.chord`);
  ctx.sends.push({
    task: sig.task,
    id,
    args: sig.immutable ? [...sig.args] : [...call.args, ...sig.args],
    kwargs: sig.immutable ? { ...sig.kwargs } : { ...sig.kwargs, ...call.kwargs },
    embed: {
      callbacks: sigList(o.link, `${sig.task}.options.link`),
      errbacks: sigList(o.link_error, `${sig.task}.options.link_error`),
      chain: chain?.length ? chain : null,
      chord,
    },
    options: o,
    group: optionText(o.group_id) ?? null,
    groupIndex: typeof o.group_index === "number" ? o.group_index : null,
  });
  return { id };
}

/** Links a canvas adds to each of its members, after the members' own. */
interface Links {
  link: SignatureDict[];
  link_error: SignatureDict[];
}

/**
 * `options` without `link` and `link_error`, and the links of `sources`
 * (in order) that each member gets added to its own: set as options, they
 * would replace the members' own links.
 */
function splitLinks(
  options: Record<string, unknown>,
  sources: readonly Readonly<Record<string, unknown>>[],
): [Links, Record<string, unknown>] {
  const { link: _l, link_error: _e, ...rest } = options;
  const links: Links = { link: [], link_error: [] };
  for (const source of sources) {
    for (const name of ["link", "link_error"] as const) {
      links[name].push(...(sigList(source[name], `options.${name}`) ?? []));
    }
  }
  return [links, rest];
}

function withLinks(sig: SignatureDict, links: Links): SignatureDict {
  return addLinks(addLinks(sig, "link", links.link), "link_error", links.link_error);
}

/**
 * As Celery's `chain.run`: the chain's errbacks go on every step, its
 * callbacks on the last, its other options (`.set()`) on the first, under
 * the call's.
 */
function applyChain(sig: SignatureDict, call: Call, ctx: Ctx): ResultTuple {
  const steps = chainSteps(sig);
  if (steps.length === 0) throw new TypeError("A chain needs at least one task");
  const { link, link_error, ...first } = partOptions(sig.options);
  // The call's (or the chain's own) task id is the chain's result: its last step's (Celery's
  // last_task_id; a frozen chain's is already its last step's).
  const { task_id: called, ...callOptions } = call.options;
  const callId = called ?? sig.options.task_id;
  const linked = steps.map((s, i) => {
    const t = addLinks(s, "link_error", link_error);
    if (i < steps.length - 1) return t;
    const last = addLinks(t, "link", link);
    return callId === undefined || callId === null ? last : withOptions(last, { task_id: callId });
  });
  const rest = linked.slice(1).map((s) => freeze(s, ctx));
  const embedChain = [...(call.chain ?? []), ...rest.slice().reverse()];
  const options = { ...first, ...callOptions };
  let node = apply(linked[0], { ...call, options, chain: embedChain }, ctx);
  for (const step of rest) node = { ...resultOf(step), parent: node };
  return node;
}

function applyGroup(sig: SignatureDict, call: Call, ctx: Ctx): ResultTuple {
  if (call.chain?.length) {
    // A group followed by more steps is a chord whose body is the next step.
    const next = call.chain[call.chain.length - 1];
    return apply(chordSignature(sig, next), { ...call, chain: call.chain.slice(0, -1) }, ctx);
  }
  const gid = optionText(sig.options.task_id) ?? optionText(call.options.task_id) ??
    chordGroupId(sig) ?? ctx.newId();
  // As Celery's group.apply_async: the group's own options (`.set()`, its links) go to every member.
  const { task_id: _, ...callOptions } = call.options;
  const [links, memberOptions] = splitLinks({ ...partOptions(sig.options), ...callOptions }, [
    sig.options,
    callOptions,
  ]);
  const members = flatMembers(sig).map((t, i) => {
    const extra = chordMemberOptions(sig, i) ??
      { group_id: gid, group_index: ctx.groupIndex === "always" ? i : null };
    const member = withLinks(withOptions(t, extra), links);
    return apply(member, { ...call, chain: null, options: memberOptions }, ctx);
  });
  return { id: gid, members };
}

function applyChord(sig: SignatureDict, call: Call, ctx: Ctx): ResultTuple {
  const { header, body } = chordParts(sig);
  const gid = optionText(header.options.task_id) ?? optionText(sig.options.task_id) ?? ctx.newId();
  // As Celery's chord: its own options go to the body and to the header members (under the
  // header group's), its links only to the body (chord.link / chord.link_error); the call's
  // options go to both (Celery's body.clone(**options)), its links to the body only, as
  // chord.link does (Celery 5.2 passes them on to the header group too, which refuses them
  // with a TypeError; on every member they would run once per member and once more).
  const { task_id: callId, ...callOptions } = call.options;
  const [bodyLinks, own] = splitLinks(partOptions(sig.options), [sig.options, callOptions]);
  const [links, memberOptions] = splitLinks(
    { ...partOptions(header.options), ...own, ...callOptions },
    [header.options],
  );
  const bodyCall = splitLinks(partOptions(callOptions), [])[1];
  const linkedBody = withLinks(
    { ...body, options: { ...body.options, ...own, ...bodyCall } },
    bodyLinks,
  );
  // The call's task id is the chord's result: its body's (Celery's body.freeze(task_id)).
  const ownBody = callId === undefined || callId === null
    ? linkedBody
    : withOptions(linkedBody, { task_id: callId });
  let frozenBody = freeze(ownBody, ctx);
  if (call.chain?.length) {
    const own = sigList(frozenBody.options.chain, "chord.body.options.chain") ?? [];
    frozenBody = {
      ...frozenBody,
      options: { ...frozenBody.options, chain: [...own, ...call.chain] },
    };
  }
  const leaves = headerLeaves(header);
  if (leaves.length === 0) {
    const node = apply(frozenBody, { args: [[]], kwargs: {}, chain: null, options: {} }, ctx);
    return { ...node, parent: { id: gid, members: [] } };
  }
  const size = { groupId: gid, size: leaves.reduce((n, t) => n + chordSize(t), 0) };
  ctx.sizes.push(size);
  const members = leaves.map((t, i) =>
    apply(
      withLinks(withOptions(t, { group_id: gid, group_index: i, chord: frozenBody }), links),
      { ...call, chain: null, options: memberOptions },
      ctx,
    )
  );
  // As Celery's apply_chord: a header holding a group result is saved, so the join can
  // give the body that group's results as a list of their own.
  if (members.some((m) => m.members)) Object.assign(size, { header: members });
  return { ...resultOf(frozenBody), parent: { id: gid, members } };
}

function apply(sig: SignatureDict, call: Call, ctx: Ctx): ResultTuple {
  switch (kind(sig)) {
    case "chain":
      return applyChain(sig, call, ctx);
    case "group":
      return applyGroup(sig, call, ctx);
    case "chord":
      return applyChord(sig, call, ctx);
    case "chunks":
      return applyGroup(chunksToGroup(sig), call, ctx);
    default:
      return send(sig, call, ctx);
  }
}

/**
 * Plan the messages that applying a signature publishes, as Celery 5.2's
 * `apply_async` does for each canvas type:
 *
 * - a task: one message;
 * - a chain: its first step, with the other steps frozen (ids assigned) in
 *   `embed.chain`, last step first; nested chains are flattened and a group
 *   followed by a step becomes a chord;
 * - a group: one message per member with header `group` (and
 *   `group_index` per {@link PlanOptions.groupIndex});
 * - a chord: one message per header member with `group`, `group_index`
 *   and `embed.chord` = the frozen body, and the chord size to store first;
 *   an empty header sends the body at once with `[]` as its first argument;
 * - map / starmap: one `celery.map` / `celery.starmap` message; chunks: a
 *   group of `celery.starmap` messages.
 *
 * @example A chord of two
 * ```ts
 * import { chordSignature, groupSignature, planCanvas } from "@celeriac/celeriac/protocol";
 * const sig = (task: string, ...args: unknown[]) =>
 *   ({ task, args, kwargs: {}, options: {}, subtask_type: null, immutable: false });
 * const plan = planCanvas(
 *   chordSignature(groupSignature([sig("t.add", 1, 1), sig("t.add", 2, 2)]), sig("t.sum")),
 * );
 * plan.sends.map((s) => s.groupIndex); // [0, 1]
 * plan.chordSizes[0].size; // 2
 * ```
 *
 * @param sig the signature to apply
 * @param options partial arguments, remaining chain, ids
 * @returns the messages, chord sizes and result shape
 * @throws {ProtocolError} for a malformed signature (unknown keys, wrong `subtask_type`)
 * @throws {TypeError} for an empty chain
 */
export function planCanvas(sig: SignatureDict, options: PlanOptions = {}): CanvasPlan {
  const ctx: Ctx = {
    sends: [],
    sizes: [],
    laterChords: false,
    newId: options.newId ?? (() => crypto.randomUUID()),
    replyTo: options.replyTo,
    groupIndex: options.groupIndex ?? "chord",
  };
  const root = decodeSignature(sig);
  const result = apply(root, {
    args: options.args ?? [],
    kwargs: options.kwargs ?? {},
    chain: options.chain ?? null,
    options: options.options ?? {},
  }, ctx);
  return {
    sends: ctx.sends,
    chordSizes: ctx.sizes,
    result,
    applied: firstApplied(result),
    laterChords: ctx.laterChords,
  };
}

/** {@link CanvasPlan.applied} of a result: a planned result lists the chain before it and a chord's header as its `parent`. */
function firstApplied(result: ResultTuple): ResultTuple {
  let node = result;
  while (node.parent && node.parent.members?.length !== 0) node = node.parent;
  return node.members ? { id: node.id, members: node.members } : { id: node.id };
}

/**
 * Freeze a signature: assign task ids (and `reply_to`) to it and every
 * part, as Celery's `Signature.freeze` does before embedding it in a
 * message.
 *
 * @example
 * ```ts
 * import { freezeSignature } from "@celeriac/celeriac/protocol";
 * const frozen = freezeSignature(
 *   { task: "t.add", args: [1], kwargs: {}, options: {}, subtask_type: null, immutable: false },
 *   { replyTo: "oid" },
 * );
 * typeof frozen.options.task_id; // "string"
 * ```
 *
 * @param sig the signature
 * @param options id maker and reply queue
 * @returns the frozen signature (`sig` is not modified; what freezing does not change is shared)
 */
export function freezeSignature(
  sig: SignatureDict,
  options: Pick<PlanOptions, "newId" | "replyTo"> = {},
): SignatureDict {
  return freeze(decodeSignature(sig), {
    sends: [],
    sizes: [],
    laterChords: false,
    newId: options.newId ?? (() => crypto.randomUUID()),
    replyTo: options.replyTo,
    groupIndex: "chord",
  });
}
