/**
 * The message that retries a task, built from the message being retried
 * as Celery's `Task.retry` builds it (`signature_from_request`).
 *
 * @module
 */

import type { Embed, Message } from "./message.ts";
import type { CompressionName } from "./compression_names.ts";
import { CONTENT_TYPES, type SerializerName } from "./serializers.ts";
import { encodeTaskMessage } from "./task_message.ts";
import type { TaskRequest } from "./task_request.ts";

/** Headers that {@link encodeTaskMessage} writes itself. */
const STANDARD_HEADERS = new Set([
  "lang",
  "task",
  "id",
  "shadow",
  "eta",
  "expires",
  "group",
  "group_index",
  "retries",
  "timelimit",
  "root_id",
  "parent_id",
  "argsrepr",
  "kwargsrepr",
  "origin",
  "ignore_result",
  "compression",
]);

/**
 * Input of {@link encodeRetryMessage}.
 *
 * @example
 * ```ts
 * import {
 *   decodeTaskBody,
 *   decodeTaskHeaders,
 *   encodeTaskMessage,
 *   type RetryMessageInput,
 * } from "@celeriac/celeriac/protocol";
 * const delivery = encodeTaskMessage({
 *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {},
 *   now: new Date(), origin: "gen1@host", replyTo: crypto.randomUUID(),
 * });
 * const { embed } = decodeTaskBody(delivery, decodeTaskHeaders(delivery).id);
 * const input: RetryMessageInput = {
 *   request: decodeTaskHeaders(delivery),
 *   original: delivery,
 *   args: [7], kwargs: {}, embed,
 *   retries: 1,
 *   eta: new Date(Date.now() + 1000),
 *   now: new Date(),
 *   origin: "celeriac@host",
 * };
 * ```
 */
export interface RetryMessageInput {
  /** The decoded headers of the message being retried. */
  request: TaskRequest;
  /** The message being retried (its properties and serializer are kept). */
  original: Message;
  /** Positional arguments of the retry. */
  args: readonly unknown[];
  /** Keyword arguments of the retry. */
  kwargs: Readonly<Record<string, unknown>>;
  /** Callbacks, errbacks, chain and chord of the task, carried over. */
  embed: Embed;
  /** The new `retries` value. */
  retries: number;
  /** When the retry runs. */
  eta: Date;
  /** The current time (the AMQP `expiration` is recomputed from it). */
  now: Date;
  /** Node name of the worker sending the retry (`origin`). */
  origin: string;
}

function serializerOf(contentType: string): SerializerName {
  return contentType === CONTENT_TYPES.msgpack ? "msgpack" : "json";
}

function compressionOf(header: unknown): CompressionName | null {
  return header === "application/x-gzip" ? "zlib" : null;
}

/**
 * Build the retry of a task message, as Celery does: same task id, name,
 * queue-independent options and workflow ids; `retries` + 1; `eta` as
 * given; `parent_id` kept, or the task's own id when it had none; `expires`
 * kept verbatim with the `expiration` property recomputed (Celery ≥ 5.3 —
 * 5.2 cannot retry an expiring task); priority, `reply_to`,
 * `correlation_id`, delivery mode, serializer, zlib compression and custom
 * headers kept. msgpack and compression need `loadCodecs` first.
 *
 * @example
 * ```ts
 * import { decodeTaskHeaders, encodeRetryMessage, encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * const id = crypto.randomUUID();
 * const original = encodeTaskMessage({
 *   task: "tasks.sync", id, args: ["42"], kwargs: {}, now: new Date(), origin: "gen1@host",
 *   replyTo: "r", priority: 3,
 * });
 * const retry = encodeRetryMessage({
 *   request: decodeTaskHeaders(original), original,
 *   args: ["42"], kwargs: {}, embed: { callbacks: null, errbacks: null, chain: null, chord: null },
 *   retries: 1, eta: new Date(Date.now() + 30_000), now: new Date(), origin: "celeriac@host",
 * });
 * retry.headers.id === id; // true
 * retry.headers.parent_id === id; // true: a retry is a child of the task itself
 * retry.properties.priority; // 3
 * ```
 *
 * @param input the original message and the retry's values
 * @returns the message to publish to the queue the original came from
 */
export function encodeRetryMessage(input: RetryMessageInput): Message {
  const { request: req, original } = input;
  const custom: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(original.headers)) {
    if (!STANDARD_HEADERS.has(k)) custom[k] = v;
  }
  const expiresHeader = original.headers.expires;
  const props = original.properties;
  const message = encodeTaskMessage({
    task: req.task,
    id: req.id,
    args: input.args,
    kwargs: input.kwargs,
    embed: input.embed,
    now: input.now,
    eta: input.eta,
    expires: typeof expiresHeader === "string" ? expiresHeader : req.expires,
    origin: input.origin,
    replyTo: req.replyTo ?? "",
    priority: typeof props.priority === "number" ? props.priority : 0,
    group: req.group,
    groupIndex: req.groupIndex,
    retries: input.retries,
    timeLimit: req.timeLimit[0],
    softTimeLimit: req.timeLimit[1],
    rootId: req.rootId ?? req.id,
    parentId: req.parentId ?? req.id,
    shadow: req.shadow,
    ignoreResult: req.ignoreResult,
    headers: Object.keys(custom).length ? custom : undefined,
    serializer: serializerOf(original.contentType),
    compression: compressionOf(original.headers.compression),
    deliveryMode: typeof props.delivery_mode === "number" ? props.delivery_mode : 2,
  });
  if (req.correlationId) message.properties.correlation_id = req.correlationId;
  return message;
}
