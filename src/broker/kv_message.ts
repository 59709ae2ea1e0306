/**
 * How the KV broker stores messages: the records under its keys (waiting,
 * unacknowledged, parked), their encoding and size limits, the checks on
 * queue names and listing limits, and the ordering sequence of its keys.
 * Pure, but for the sequence's memory of its last value.
 *
 * @module
 */

import { pyJsonDumps, pyJsonLoads } from "../protocol/json.ts";
import type { Message, MessageProperties } from "../protocol/message.ts";
import { checkQueueName } from "./errors.ts";
import { type Delivery, DELIVERY_COUNT_HEADER } from "./port.ts";

/**
 * The largest message the KV broker accepts, in bytes: body plus encoded
 * headers and properties. Deno KV stores at most 64 KiB per value; the rest
 * is kept for delivery and parking bookkeeping.
 *
 * @example
 * ```ts
 * import { KV_MAX_MESSAGE_BYTES } from "@celeriac/celeriac/transports";
 * const fits = (body: Uint8Array) => body.byteLength < KV_MAX_MESSAGE_BYTES - 2048;
 * ```
 */
export const KV_MAX_MESSAGE_BYTES = 60_000;

/** The longest queue name, in UTF-8 bytes (Deno KV keys are limited to 2 KiB). */
const MAX_QUEUE_BYTES = 256;

/**
 * A message as the KV broker stores it.
 *
 * @example
 * ```ts
 * import { encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * const message = encodeTaskMessage({
 *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {},
 *   now: new Date(), origin: "gen1@host", replyTo: crypto.randomUUID(),
 * });
 * const stored: StoredMessage = encodeMessage(message, "", "celery");
 * ```
 */
export interface StoredMessage {
  body: Uint8Array;
  /** pyJsonDumps of {@link StoredEnvelope}. */
  envelope: string;
  step: number;
  redelivered: boolean;
  /** Times it was restored after its visibility timeout (a consumer died holding it). */
  restores?: number;
}

/** Everything of a message but its body, as JSON text in {@link StoredMessage}. */
export interface StoredEnvelope {
  content_type: string;
  content_encoding: string;
  headers: Record<string, unknown>;
  properties: MessageProperties;
  exchange: string;
  routing_key: string;
}

/** A delivered message waiting to be settled, with its lease deadline (ms since the epoch). */
export interface Unacked {
  message: StoredMessage;
  queue: string;
  deadline: number;
}

/** A parked message with why and when it was parked. */
export interface Parked {
  message: StoredMessage;
  queue: string;
  reason: string;
  taskId: string | null;
  taskName: string | null;
  parkedAt: number;
}

/** A message just taken, under its new delivery tag. */
export interface Taken {
  tag: string;
  queue: string;
  message: StoredMessage;
}

let lastSeq = 0n;

/**
 * A number that grows with every call, and across calls with the clock
 * (microseconds since the epoch, or one more than the last).
 *
 * @example
 * ```ts
 * import { nextSeq } from "./kv_message.ts";
 * nextSeq() < nextSeq(); // true
 * ```
 */
export function nextSeq(): bigint {
  const now = BigInt(Date.now()) * 1000n;
  lastSeq = now > lastSeq ? now : lastSeq + 1n;
  return lastSeq;
}

/**
 * kombu's priority quantisation: 0-2 → 0, 3-5 → 3, 6-8 → 6, 9 → 9.
 *
 * @example
 * ```ts
 * import { priorityStep } from "./kv_message.ts";
 * priorityStep(5); // 3
 * ```
 */
export function priorityStep(priority: unknown): number {
  const p = Math.min(9, Math.max(0, Math.trunc(Number(priority)) || 0));
  return p - (p % 3);
}

/**
 * The bytes a stored message counts for against the limits.
 *
 * @example
 * ```ts ignore
 * if (messageBytes(stored) > KV_MAX_MESSAGE_BYTES) throw new RangeError("too large");
 * ```
 */
export function messageBytes(m: StoredMessage): number {
  return m.body.byteLength + m.envelope.length;
}

function clip(text: string | null, max: number): string | null {
  return text === null || text.length <= max ? text : text.slice(0, max - 1) + "…";
}

/**
 * A queue name the KV broker can use ({@link checkQueueName}, and at most
 * 256 UTF-8 bytes), or a clear error.
 *
 * @example
 * ```ts
 * import { checkQueue } from "./kv_message.ts";
 * checkQueue("celery", "purge()"); // "celery"
 * ```
 *
 * @param queue the argument
 * @param method the method, for the message
 * @returns the queue name
 * @throws {TypeError} when it is not a non-empty string
 * @throws {RangeError} when it is longer than 256 UTF-8 bytes
 */
export function checkQueue(queue: unknown, method: string): string {
  const name = checkQueueName(queue, method);
  if (new TextEncoder().encode(name).byteLength > MAX_QUEUE_BYTES) {
    throw new RangeError(
      `Queue name "${name.slice(0, 40)}…" is longer than the KV broker's ${MAX_QUEUE_BYTES} bytes`,
    );
  }
  return name;
}

/**
 * A message as stored, its body copied.
 *
 * @example
 * ```ts
 * import { encodeMessage } from "./kv_message.ts";
 * const stored = encodeMessage({
 *   body: new Uint8Array([1]),
 *   contentType: "application/json",
 *   contentEncoding: "utf-8",
 *   headers: {},
 *   properties: { priority: 7 },
 * }, "", "celery");
 * stored.step; // 6
 * ```
 *
 * @throws {TypeError} when the body is not a Uint8Array
 * @throws {RangeError} when it is larger than {@link KV_MAX_MESSAGE_BYTES}
 */
export function encodeMessage(
  message: Message,
  exchange: string,
  routingKey: string,
): StoredMessage {
  if (!(message.body instanceof Uint8Array)) {
    throw new TypeError("Message body must be a Uint8Array (serialize the payload first)");
  }
  const envelope: StoredEnvelope = {
    content_type: message.contentType,
    content_encoding: message.contentEncoding,
    headers: message.headers,
    properties: message.properties,
    exchange,
    routing_key: routingKey,
  };
  const stored: StoredMessage = {
    body: message.body.slice(),
    envelope: pyJsonDumps(envelope),
    step: priorityStep(message.properties.priority),
    redelivered: false,
  };
  const size = messageBytes(stored);
  if (size > KV_MAX_MESSAGE_BYTES) {
    throw new RangeError(
      `This message is ${size} bytes (body, headers and properties), over the KV broker's ` +
        `limit of ${KV_MAX_MESSAGE_BYTES} bytes (Deno KV stores at most 64 KiB per value). ` +
        `Pass a reference to large data instead of the data, or use the Redis broker (redis://)`,
    );
  }
  return stored;
}

/**
 * The delivery a taken message is handed out as; `redelivered` and the
 * delivery count appear in its headers as Celery reads them.
 *
 * @example
 * ```ts ignore
 * const delivery = decodeDelivery({ tag, queue: "celery", message: stored });
 * ```
 *
 * @throws {TypeError} when the stored envelope is unreadable
 */
export function decodeDelivery(taken: Taken): Delivery {
  const env = pyJsonLoads(taken.message.envelope) as Partial<StoredEnvelope> | null;
  if (env === null || typeof env !== "object" || typeof env.headers !== "object") {
    throw new TypeError("stored envelope is not an object with headers");
  }
  const headers = { ...env.headers };
  if (taken.message.redelivered) headers.redelivered = true;
  if (taken.message.restores) headers[DELIVERY_COUNT_HEADER] = taken.message.restores;
  return {
    body: taken.message.body,
    contentType: String(env.content_type ?? ""),
    contentEncoding: String(env.content_encoding ?? ""),
    headers,
    properties: { ...env.properties },
    queue: taken.queue,
    deliveryTag: taken.tag,
    redelivered: taken.message.redelivered,
    exchange: String(env.exchange ?? ""),
    routingKey: String(env.routing_key ?? taken.queue),
  };
}

/**
 * The parked record of a message, its texts clipped to sizes a KV value holds.
 *
 * @example
 * ```ts ignore
 * const parked = parkedEntry(stored, "celery", "poison", taskId, "tasks.add");
 * ```
 */
export function parkedEntry(
  message: StoredMessage,
  queue: string,
  reason: string,
  taskId: string | null,
  taskName: string | null,
): Parked {
  return {
    message,
    queue,
    reason: clip(reason, 1000) ?? "",
    taskId: clip(taskId, 256),
    taskName: clip(taskName, 256),
    parkedAt: Date.now(),
  };
}

/**
 * A header's value when it is a string, else null.
 *
 * @example
 * ```ts
 * import { headerText } from "./kv_message.ts";
 * headerText(42); // null
 * ```
 */
export function headerText(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

/**
 * A listing's limit: `fallback` when none is given, Infinity allowed.
 *
 * @example
 * ```ts
 * import { checkLimit } from "./kv_message.ts";
 * checkLimit(undefined, 100, "listParked()"); // 100
 * ```
 *
 * @throws {RangeError} when it is not a positive integer (or Infinity)
 */
export function checkLimit(limit: number | undefined, fallback: number, what: string): number {
  const n = limit ?? fallback;
  if (n !== Infinity && (!Number.isInteger(n) || n < 1)) {
    throw new RangeError(`${what}: limit must be a positive integer, got ${limit}`);
  }
  return n;
}
