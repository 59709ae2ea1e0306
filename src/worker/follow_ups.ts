/**
 * Follow-up messages after a task finishes, as Celery's worker sends them:
 * `link` callbacks and the next `chain` step on success (with the result
 * prepended to their arguments unless immutable), `link_error` errbacks on
 * failure (called with the failed task's id, as one group, as Celery does
 * for errbacks it cannot call in-process). A step or callback may be any canvas (a group,
 * a chord, a chain): it is planned as the client would apply it. Pure:
 * builds messages, sends nothing.
 *
 * @module
 */

import type { PublishTarget } from "../broker/port.ts";
import { planCanvas } from "../protocol/canvas.ts";
import type { CanvasSend, ChordSize } from "../protocol/canvas_types.ts";
import { groupSignature, optionText } from "../protocol/canvas_shape.ts";
import { canvasQueue, canvasTarget, encodeCanvasSend } from "../protocol/canvas_message.ts";
import { type CodecNeeds, codecsForOptions } from "../protocol/codecs.ts";
import { exceptionInfo } from "../protocol/exceptions.ts";
import type { ExceptionInfo } from "../protocol/result_meta.ts";
import type { Embed, Message, SignatureDict } from "../protocol/message.ts";
import type { ResultTuple } from "../protocol/signature.ts";

/** A message to publish and where. */
export interface Outgoing {
  /**
   * The message, or what encodes it: follow-ups are encoded when they are
   * published, a chunk at a time (see `publishAll`), so that a group of
   * 200,000 does not hold the event loop while all are encoded at once.
   */
  message: Message | (() => Message);
  /** Where to publish it. */
  target: PublishTarget;
  /**
   * Its queue, for the `task-sent` event: the one its options name, else
   * the default queue (as Celery's, whose event names the routed queue,
   * not the routing key). Absent for a message put back on the broker
   * (an ETA task held too long): no event.
   */
  queue?: string;
  /** Its task id. */
  taskId: string;
  /** Optional codecs its encoding needs (its signature asks for msgpack or compression). */
  codecs?: CodecNeeds;
  /** Chord sizes the result backend must store before this message is published. */
  chordSizes?: ChordSize[];
  /**
   * For a chord header member: its chord, which must still be joined with
   * the member's FAILURE when its message cannot be encoded (it never runs).
   */
  chord?: { groupId: string; groupIndex: number | null; body: SignatureDict; parent: Parent };
  /**
   * Whether its task id came from its signature (`options.task_id`, a frozen
   * signature or chain step) rather than being made here: only such a task
   * can have a result before it is sent, so a suppressed duplicate looks up
   * only those before sending them again. Default false.
   */
  frozen?: boolean;
}

/** A follow-up that could not be built (a malformed signature), with the error to store. */
export interface BrokenFollowUp {
  /** The follow-up's pre-assigned task id, if it had one (its waiters get the error). */
  taskId: string | null;
  /** The task name, for the log. */
  task: string;
  /** The error. */
  exc: ExceptionInfo;
}

/** What a finished task sends next. */
export interface FollowUps {
  /** Messages, in order. */
  publishes: Outgoing[];
  /** Result tuples of what was sent (the finished task's `children`). */
  children: ResultTuple[];
  /** Follow-ups that could not be sent. */
  broken: BrokenFollowUp[];
}

/** The finished task, as parent of its follow-ups. */
export interface Parent {
  /** Its id (the follow-ups' `parent_id`). */
  id: string;
  /** Workflow root id. */
  rootId: string;
  /** Worker node name (`origin`). */
  origin: string;
  /** Queue to use when a signature names none, once routed by {@link Parent.route}. */
  defaultQueue: string;
  /**
   * A signature's options routed by the worker's app (its tasks' queues and
   * `taskRoutes`, as Celery routes every `apply_async`); without it, its own.
   */
  route?(
    task: string,
    args: readonly unknown[],
    kwargs: Record<string, unknown>,
    options: Record<string, unknown>,
  ): Record<string, unknown>;
  /** Headers inherited by follow-ups (Celery ≥ 5.3 stamps). */
  headers?: Record<string, unknown>;
}

/** The headers a follow-up inherits: Celery ≥ 5.3 canvas stamps. */
export function inheritedHeaders(
  headers: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const stamped = headers.stamped_headers;
  if (!Array.isArray(stamped) || stamped.length === 0) return {};
  const out: Record<string, unknown> = { stamped_headers: stamped, stamps: headers.stamps ?? {} };
  for (const k of stamped) if (typeof k === "string" && k in headers) out[k] = headers[k];
  return out;
}

/** What {@link applySignature} does besides planning. */
export interface ApplySignatureOptions {
  /**
   * Throw for planned sends that must not go (a call its task's handler
   * cannot take, say): then none of the signature's is sent and it is
   * collected as broken, with the thrown error, under its result's id.
   * Default: every send goes.
   */
  check?(sends: readonly CanvasSend[]): void;
}

/**
 * Build the messages that apply a signature (any canvas).
 *
 * @example
 * ```ts ignore
 * const out = applySignature(sig, [5], null, parent, new Date(), into);
 * ```
 *
 * @param sig the signature dict
 * @param prepend arguments placed before the signature's own (ignored when immutable)
 * @param chain remaining chain steps to carry (reverse order), or null
 * @param parent the finished task
 * @param now current time
 * @param into where messages, children and errors are collected
 * @param options a check of the planned sends (default: none)
 */
export function applySignature(
  sig: SignatureDict,
  prepend: readonly unknown[],
  chain: readonly SignatureDict[] | null,
  parent: Parent,
  now: Date,
  into: FollowUps,
  options: ApplySignatureOptions = {},
): void {
  let plan;
  const made = new Set<string>();
  const newId = () => {
    const id = crypto.randomUUID();
    made.add(id);
    return id;
  };
  try {
    plan = planCanvas(sig, { args: prepend, chain, newId });
  } catch (err) {
    const own = (sig?.options ?? {}) as Record<string, unknown>;
    into.broken.push({
      taskId: optionText(own.task_id) ?? null,
      task: String(sig?.task),
      exc: {
        exc_type: (err as Error).name,
        exc_message: [(err as Error).message],
        exc_module: "celeriac",
      },
    });
    return;
  }
  try {
    options.check?.(plan.sends);
  } catch (err) {
    into.broken.push({ taskId: plan.result.id, task: String(sig.task), exc: exceptionInfo(err) });
    return;
  }
  const sender = {
    now,
    origin: parent.origin,
    replyTo: "",
    rootId: parent.rootId,
    parentId: parent.id,
    headers: parent.headers,
  };
  plan.sends.forEach((planned, i) => {
    const routed = parent.route?.(planned.task, planned.args, planned.kwargs, planned.options);
    const send = routed ? { ...planned, options: routed } : planned;
    const body = send.embed.chord;
    into.publishes.push({
      message: () => encodeCanvasSend(send, sender),
      target: canvasTarget(send, parent.defaultQueue),
      queue: canvasQueue(send, parent.defaultQueue),
      taskId: send.id,
      codecs: codecsOf(send.options),
      chordSizes: i === 0 && plan.chordSizes.length ? plan.chordSizes : undefined,
      chord: body && send.group
        ? {
          groupId: send.group,
          groupIndex: send.groupIndex,
          body,
          parent: { ...parent, id: send.id },
        }
        : undefined,
      frozen: !made.has(send.id),
    });
  });
  into.children.push(plan.applied);
}

/** The optional codecs a send's options ask for; `undefined` for JSON, uncompressed. */
function codecsOf(options: Record<string, unknown>): CodecNeeds | undefined {
  const needs = codecsForOptions(options);
  return needs.msgpack || needs.compression ? needs : undefined;
}

function empty(): FollowUps {
  return { publishes: [], children: [], broken: [] };
}

/**
 * Apply the callbacks of a success as Celery 5.2's worker does: one alone is
 * applied as it is; of two or more, each group is applied on its own, then
 * all the others together as one new group (each sent with its `group_id`),
 * whose result is the one child recorded for them.
 */
function applyCallbacks(
  callbacks: readonly SignatureDict[],
  value: unknown,
  parent: Parent,
  now: Date,
  into: FollowUps,
): void {
  if (callbacks.length < 2) {
    for (const cb of callbacks) applySignature(cb, [value], null, parent, now, into);
    return;
  }
  const others = callbacks.filter((cb) => cb?.subtask_type !== "group");
  for (const cb of callbacks) {
    if (cb?.subtask_type === "group") applySignature(cb, [value], null, parent, now, into);
  }
  if (others.length) applySignature(groupSignature(others), [value], null, parent, now, into);
}

/**
 * What to send after a success: every callback, then the next chain step.
 *
 * @example
 * ```ts ignore
 * const { publishes } = successFollowUps(embed, 5, parent, new Date());
 * ```
 *
 * @param embed the finished task's embed
 * @param value its return value
 * @param parent the finished task
 * @param now current time
 * @returns messages to publish, children, broken follow-ups
 */
export function successFollowUps(
  embed: Embed,
  value: unknown,
  parent: Parent,
  now: Date,
): FollowUps {
  const out = empty();
  applyCallbacks(embed.callbacks ?? [], value, parent, now, out);
  const chain = embed.chain;
  if (chain && chain.length > 0) {
    const rest = chain.slice(0, -1);
    applySignature(chain[chain.length - 1], [value], rest.length ? rest : null, parent, now, out);
  }
  return out;
}

/**
 * What to send after a failure: each errback, called with the failed task's
 * id. They are not the failed task's children: Celery stores the failure
 * before it sends them, so its meta never lists them.
 *
 * @example
 * ```ts ignore
 * const { publishes } = failureFollowUps(embed, parent, new Date());
 * ```
 *
 * @param embed the failed task's embed
 * @param parent the failed task
 * @param now current time
 * @returns messages to publish
 */
export function failureFollowUps(embed: Embed, parent: Parent, now: Date): FollowUps {
  const out = empty();
  applyErrbacks(embed.errbacks ?? [], parent.id, parent, now, out);
  return { ...out, children: [] };
}

/**
 * Apply the errbacks a failure sends as Celery 5.2.6's backend does
 * (`group(errbacks).apply_async((task_id,), parent_id=…, root_id=…)`): as
 * one new group, each message carrying its `group` id, called with the
 * failed task's id. When that group cannot be planned (a malformed
 * errback), each is applied on its own, so the others still go and the
 * broken one's error is stored under its id.
 *
 * @example
 * ```ts ignore
 * applyErrbacks(embed.errbacks ?? [], parent.id, parent, new Date(), into);
 * ```
 *
 * @param errbacks the errbacks to send
 * @param failedId the failed task's id (the errbacks' argument)
 * @param parent what sends them (their `parent_id` and `root_id`)
 * @param now current time
 * @param into where messages and errors are collected
 */
export function applyErrbacks(
  errbacks: readonly SignatureDict[],
  failedId: string,
  parent: Parent,
  now: Date,
  into: FollowUps,
): void {
  if (errbacks.length === 0) return;
  const grouped = empty();
  applySignature(groupSignature(errbacks), [failedId], null, parent, now, grouped);
  if (grouped.broken.length === 0) {
    for (const p of grouped.publishes) into.publishes.push(p);
    return;
  }
  for (const eb of errbacks) applySignature(eb, [failedId], null, parent, now, into);
}

/**
 * The chain steps that will now never run (Celery stores the failure under
 * each of them too): their task ids and `reply_to` (the caller's reply queue,
 * where the rpc backend sends that failure).
 *
 * @example
 * ```ts ignore
 * chainSteps(embed); // [{ taskId: "…", replyTo: "…" }]
 * ```
 *
 * @param embed the failed task's embed
 * @returns the steps
 */
export function chainSteps(
  embed: Pick<Embed, "chain">,
): { taskId: string; replyTo: string | null }[] {
  return (embed.chain ?? []).flatMap((s) => {
    const taskId = optionText((s.options ?? {}).task_id);
    return taskId === undefined
      ? []
      : [{ taskId, replyTo: optionText((s.options ?? {}).reply_to) ?? null }];
  });
}
