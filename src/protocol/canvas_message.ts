/**
 * Turn a planned canvas send ({@link CanvasSend}) into a task message.
 *
 * @module
 */

import type { CanvasSend } from "./canvas_types.ts";
import type { CompressionName } from "./compression_names.ts";
import type { Message } from "./message.ts";
import type { SerializerName } from "./serializers.ts";
import { encodeTaskMessage } from "./task_message.ts";
import { optionText } from "./canvas_shape.ts";
import { taskTarget } from "./task_target.ts";

/**
 * Who sends a canvas message and when.
 *
 * @example
 * ```ts
 * import type { CanvasSender } from "@celeriac/celeriac/protocol";
 * const sender: CanvasSender = { now: new Date(), origin: "gen1@host", replyTo: "oid" };
 * ```
 */
export interface CanvasSender {
  /** The current time (countdowns count from it). */
  now: Date;
  /** Sender node name (`origin` header). */
  origin: string;
  /** Producer reply queue, used when the signature names none. */
  replyTo: string;
  /** Workflow root id; default each message's own id. */
  rootId?: string | null;
  /** Id of the task sending it, if any. */
  parentId?: string | null;
  /** Default serializer when the signature names none. */
  serializer?: SerializerName;
  /** Default compression when the signature names none. */
  compression?: CompressionName | null;
  /** Extra headers (e.g. inherited stamps), merged before the signature's own. */
  headers?: Readonly<Record<string, unknown>>;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/**
 * Encode one planned send: the execution options a signature may carry
 * (`countdown`, `eta`, `expires`, `priority`, `time_limit`,
 * `soft_time_limit`, `shadow`, `headers`, `serializer`, `compression`,
 * `ignore_result`, `reply_to`, and Celery ≥ 5.3's `stamped_headers` /
 * `stamps`) become headers and properties as `apply_async` would make them.
 *
 * @example
 * ```ts
 * import { encodeCanvasSend, planCanvas } from "@celeriac/celeriac/protocol";
 * const plan = planCanvas({
 *   task: "t.add", args: [1, 2], kwargs: {}, options: { countdown: 5 }, subtask_type: null, immutable: false,
 * });
 * const msg = encodeCanvasSend(plan.sends[0], { now: new Date(), origin: "gen1@host", replyTo: "oid" });
 * typeof msg.headers.eta; // "string"
 * ```
 *
 * @param send the planned send
 * @param sender origin, time, ids
 * @returns the message
 */
export function encodeCanvasSend(send: CanvasSend, sender: CanvasSender): Message {
  const o = send.options;
  const extra = o.headers !== null && typeof o.headers === "object"
    ? o.headers as Record<string, unknown>
    : undefined;
  const stamped = Array.isArray(o.stamped_headers) ? o.stamped_headers as unknown[] : null;
  let headers = sender.headers || extra ? { ...sender.headers, ...extra } : undefined;
  if (stamped) {
    // Celery >= 5.3 stamping: a stamped signature's stamps travel as headers.
    headers = { ...headers, stamped_headers: stamped, stamps: o.stamps ?? {} };
    for (const k of stamped) if (typeof k === "string" && k in o) headers[k] = o[k];
  }
  return encodeTaskMessage({
    task: send.task,
    id: send.id,
    args: send.args,
    kwargs: send.kwargs,
    embed: send.embed,
    now: sender.now,
    countdown: num(o.countdown),
    eta: optionText(o.eta),
    expires: num(o.expires) ?? optionText(o.expires),
    origin: sender.origin,
    replyTo: optionText(o.reply_to) ?? sender.replyTo,
    priority: num(o.priority),
    group: send.group,
    groupIndex: send.groupIndex,
    timeLimit: num(o.time_limit),
    softTimeLimit: num(o.soft_time_limit),
    rootId: sender.rootId ?? undefined,
    parentId: sender.parentId ?? undefined,
    shadow: optionText(o.shadow),
    ignoreResult: o.ignore_result === true ? true : undefined,
    headers,
    serializer: (optionText(o.serializer) as SerializerName | undefined) ?? sender.serializer,
    compression: (optionText(o.compression) as CompressionName | undefined) ?? sender.compression,
  });
}

/**
 * Where a planned send goes: its `exchange` with its `routing_key` when
 * its options name both, else the default exchange with its `queue` (or
 * the given default queue) as routing key, as Celery sends it
 * ({@link taskTarget}).
 *
 * @example
 * ```ts
 * import { canvasTarget } from "@celeriac/celeriac/protocol";
 * canvasTarget({ options: { queue: "math" } }, "celery"); // { exchange: "", routingKey: "math" }
 * ```
 *
 * @param send the planned send (its options)
 * @param defaultQueue queue when none is named
 * @returns exchange and routing key
 */
export function canvasTarget(
  send: Pick<CanvasSend, "options">,
  defaultQueue: string,
): { exchange: string; routingKey: string } {
  const o = send.options;
  return taskTarget(
    optionText(o.queue) ?? defaultQueue,
    optionText(o.exchange),
    optionText(o.routing_key),
  );
}

/**
 * The queue a canvas send is routed for, as its `task-sent` event names it:
 * the queue its options name, else the default queue (Celery's event names
 * the routed queue, not the routing key, which may differ from it).
 *
 * @example
 * ```ts
 * canvasQueue({ options: { exchange: "x", routing_key: "k" } }, "celery"); // "celery"
 * ```
 *
 * @param send the send (its routed options)
 * @param defaultQueue queue when none is named
 * @returns the queue name
 */
export function canvasQueue(send: Pick<CanvasSend, "options">, defaultQueue: string): string {
  return optionText(send.options.queue) ?? defaultQueue;
}
