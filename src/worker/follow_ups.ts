/**
 * Follow-up messages after a task finishes, as Celery's worker sends them:
 * `link` callbacks and the next `chain` step on success (with the result
 * prepended to their arguments unless immutable), `link_error` errbacks on
 * failure (called with the failed task's id, as Celery does for errbacks it
 * cannot call in-process). Pure: builds messages, sends nothing.
 *
 * @module
 */

import type { PublishTarget } from "../broker/port.ts";
import type { Embed, Message, SignatureDict } from "../protocol/message.ts";
import { encodeTaskMessage } from "../protocol/task_message.ts";

/** A message to publish and where. */
export interface Outgoing {
  /** The message. */
  message: Message;
  /** Where to publish it. */
  target: PublishTarget;
  /** Its task id. */
  taskId: string;
}

/** The finished task, as parent of its follow-ups. */
export interface Parent {
  /** Its id (the follow-ups' `parent_id`). */
  id: string;
  /** Workflow root id. */
  rootId: string;
  /** Worker node name (`origin`). */
  origin: string;
  /** Queue to use when a signature names none. */
  defaultQueue: string;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function signatures(v: unknown): SignatureDict[] | null {
  if (!v) return null;
  return (Array.isArray(v) ? v : [v]) as SignatureDict[];
}

/**
 * Build the message that applies a signature.
 *
 * @example
 * ```ts ignore
 * const out = applySignature(sig, [5], null, parent, new Date());
 * ```
 *
 * @param sig the signature dict
 * @param prepend arguments placed before the signature's own (ignored when immutable)
 * @param chain remaining chain steps to carry (reverse order), or null
 * @param parent the finished task
 * @param now current time
 * @returns the message and target
 */
export function applySignature(
  sig: SignatureDict,
  prepend: readonly unknown[],
  chain: SignatureDict[] | null,
  parent: Parent,
  now: Date,
): Outgoing {
  const o = (sig.options ?? {}) as Record<string, unknown>;
  const id = str(o.task_id) ?? crypto.randomUUID();
  const args = sig.immutable ? [...(sig.args ?? [])] : [...prepend, ...(sig.args ?? [])];
  const queue = str(o.queue) ?? parent.defaultQueue;
  const message = encodeTaskMessage({
    task: sig.task,
    id,
    args,
    kwargs: sig.kwargs ?? {},
    embed: {
      callbacks: signatures(o.link),
      errbacks: signatures(o.link_error),
      chain,
      chord: (o.chord as SignatureDict | undefined) ?? null,
    },
    now,
    countdown: num(o.countdown),
    eta: str(o.eta),
    expires: num(o.expires) ?? str(o.expires),
    origin: parent.origin,
    replyTo: str(o.reply_to) ?? "",
    priority: num(o.priority),
    group: str(o.group_id),
    groupIndex: num(o.group_index),
    timeLimit: num(o.time_limit),
    softTimeLimit: num(o.soft_time_limit),
    rootId: parent.rootId,
    parentId: parent.id,
    shadow: str(o.shadow),
    headers: (o.headers as Record<string, unknown> | undefined) ?? undefined,
  });
  return {
    message,
    target: { exchange: str(o.exchange) ?? "", routingKey: str(o.routing_key) ?? queue },
    taskId: id,
  };
}

/**
 * Messages due after a success: every callback, then the next chain step.
 *
 * @example
 * ```ts ignore
 * for (const out of successFollowUps(embed, 5, parent, new Date())) await broker.publish(out.message, out.target);
 * ```
 *
 * @param embed the finished task's embed
 * @param value its return value
 * @param parent the finished task
 * @param now current time
 * @returns messages to publish
 */
export function successFollowUps(
  embed: Embed,
  value: unknown,
  parent: Parent,
  now: Date,
): Outgoing[] {
  const out: Outgoing[] = [];
  for (const cb of embed.callbacks ?? []) out.push(applySignature(cb, [value], null, parent, now));
  const chain = embed.chain;
  if (chain && chain.length > 0) {
    const rest = chain.slice(0, -1);
    out.push(
      applySignature(chain[chain.length - 1], [value], rest.length ? rest : null, parent, now),
    );
  }
  return out;
}

/**
 * Messages due after a failure: each errback, called with the failed task's id.
 *
 * @example
 * ```ts ignore
 * const outs = failureFollowUps(embed, parent, new Date());
 * ```
 *
 * @param embed the failed task's embed
 * @param parent the failed task
 * @param now current time
 * @returns messages to publish
 */
export function failureFollowUps(embed: Embed, parent: Parent, now: Date): Outgoing[] {
  return (embed.errbacks ?? []).map((eb) => applySignature(eb, [parent.id], null, parent, now));
}

/**
 * Task ids of the chain steps that will now never run (Celery stores the
 * failure under each of them too).
 *
 * @example
 * ```ts ignore
 * chainStepIds(embed); // ["…", "…"]
 * ```
 *
 * @param embed the failed task's embed
 * @returns the ids
 */
export function chainStepIds(embed: Embed): string[] {
  return (embed.chain ?? []).map((s) => str((s.options ?? {}).task_id)).filter((x): x is string =>
    x !== undefined
  );
}
