/**
 * Converting between Celeriac's {@link Message} and amqplib's publish
 * options and delivered messages: property names (`reply_to` ↔ `replyTo`),
 * typed headers, and the bookkeeping headers of parked messages.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Message, MessageProperties } from "../protocol/message.ts";
import { UndecodableHeaders } from "./amqp_header_frames.ts";
import { toAmqpTable } from "./amqp_table.ts";

/**
 * Header that marks a message put back by Celeriac (a requeued parked
 * message): AMQP's own `redelivered` flag cannot be set by a publisher.
 *
 * @example
 * ```ts
 * import { REDELIVERED_HEADER } from "./amqp_message.ts";
 * REDELIVERED_HEADER; // "x-celeriac-redelivered"
 * ```
 */
export const REDELIVERED_HEADER = "x-celeriac-redelivered";

/**
 * Header of a parked message holding why, when and from where it was parked.
 *
 * @example
 * ```ts
 * import { PARKED_HEADER } from "./amqp_message.ts";
 * PARKED_HEADER; // "x-celeriac-parked"
 * ```
 */
export const PARKED_HEADER = "x-celeriac-parked";

/**
 * Header naming the requeue that put a parked message back (a fresh id
 * per requeue), kept on its deliveries: when the message is parked again,
 * its new copy's park id differs from that of the copy it was moved from,
 * so the requeue that moved the first cannot take the second for a
 * duplicate and drop it.
 *
 * @example
 * ```ts
 * import { REQUEUE_HEADER } from "./amqp_message.ts";
 * REQUEUE_HEADER; // "x-celeriac-requeue"
 * ```
 */
export const REQUEUE_HEADER = "x-celeriac-requeue";

/** AMQP basic properties, as Celery names them and as amqplib names them. */
const PROPERTY_NAMES: readonly (readonly [keyof MessageProperties & string, string])[] = [
  ["correlation_id", "correlationId"],
  ["reply_to", "replyTo"],
  ["delivery_mode", "deliveryMode"],
  ["priority", "priority"],
  ["expiration", "expiration"],
  ["message_id", "messageId"],
  ["timestamp", "timestamp"],
  ["type", "type"],
  ["user_id", "userId"],
  ["app_id", "appId"],
];

/**
 * amqplib's name of each AMQP basic property, by Celery's name.
 *
 * @example
 * ```ts
 * import { AMQPLIB_PROPERTY_NAMES } from "./amqp_message.ts";
 * AMQPLIB_PROPERTY_NAMES.correlation_id; // "correlationId"
 * ```
 */
export const AMQPLIB_PROPERTY_NAMES: Readonly<Record<string, string>> = Object.fromEntries(
  PROPERTY_NAMES,
);

/**
 * amqplib's publish options (the subset Celeriac sets).
 *
 * @example
 * ```ts
 * import type { AmqpPublishOptions } from "./amqp_message.ts";
 * const o: AmqpPublishOptions = { contentType: "application/json", deliveryMode: 2, headers: {} };
 * ```
 */
export interface AmqpPublishOptions {
  /** MIME type of the body. */
  contentType?: string;
  /** `utf-8` or `binary`. */
  contentEncoding?: string;
  /** Typed headers. */
  headers?: Record<string, unknown>;
  /** Every other property, under amqplib's name. */
  [property: string]: unknown;
}

/**
 * A message as amqplib delivers it (from `get` or `consume`).
 *
 * @example
 * ```ts
 * import type { AmqpIncoming } from "./amqp_message.ts";
 * const incoming: AmqpIncoming = {
 *   content: new Uint8Array([123, 125]),
 *   fields: { deliveryTag: 1, redelivered: false, exchange: "", routingKey: "celery" },
 *   properties: { contentType: "application/json", headers: {} },
 * };
 * ```
 */
export interface AmqpIncoming {
  /** The body. */
  content: Uint8Array;
  /** Delivery fields. */
  fields: { deliveryTag: number; redelivered: boolean; exchange: string; routingKey: string };
  /** Basic properties under amqplib's names (absent ones `undefined`). */
  properties: object;
}

/**
 * The publish options for a message: properties renamed for amqplib,
 * headers typed as py-amqp types them. Properties AMQP does not have (such
 * as the Redis envelope's `body_encoding`) are left out.
 *
 * @example
 * ```ts
 * import { toPublishOptions } from "./amqp_message.ts";
 * const o = toPublishOptions({
 *   body: new Uint8Array(), contentType: "application/json", contentEncoding: "utf-8",
 *   headers: { retries: 0 }, properties: { reply_to: "r", delivery_mode: 2, priority: 0 },
 * });
 * // { contentType: "application/json", contentEncoding: "utf-8",
 * //   headers: { retries: { "!": "int", value: 0 } }, replyTo: "r", deliveryMode: 2, priority: 0 }
 * ```
 *
 * @param message the message
 * @returns amqplib publish options
 */
export function toPublishOptions(message: Message): AmqpPublishOptions {
  const out: AmqpPublishOptions = {
    contentType: message.contentType,
    contentEncoding: message.contentEncoding,
    headers: toAmqpTable(message.headers),
  };
  for (const [ours, theirs] of PROPERTY_NAMES) {
    const v = message.properties[ours];
    if (v !== undefined && v !== null) out[theirs] = ours === "expiration" ? String(v) : v;
  }
  return out;
}

/**
 * The body as the Buffer amqplib sends.
 *
 * @example
 * ```ts
 * import { toContent } from "./amqp_message.ts";
 * toContent(new Uint8Array([1, 2])).length; // 2
 * ```
 *
 * @param body message body
 * @returns a Buffer over the same bytes
 */
export function toContent(body: Uint8Array): Buffer {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * A delivered message as a Celeriac {@link Message}, with whether it was
 * delivered before (AMQP's flag, or Celeriac's header on a message put back
 * from the parking queue; the header is removed).
 *
 * @example
 * ```ts
 * import { fromIncoming } from "./amqp_message.ts";
 * const { message, redelivered } = fromIncoming({
 *   content: new Uint8Array([34, 120, 34]),
 *   fields: { deliveryTag: 1, redelivered: true, exchange: "", routingKey: "celery" },
 *   properties: { contentType: "application/json", contentEncoding: "utf-8", replyTo: "r" },
 * });
 * // message.properties.reply_to === "r", redelivered === true
 * ```
 *
 * @param incoming what amqplib delivered
 * @returns the message and its redelivered flag
 */
export function fromIncoming(incoming: AmqpIncoming): { message: Message; redelivered: boolean } {
  const p = incoming.properties as Record<string, unknown>;
  const undecodable = p.headers instanceof UndecodableHeaders ? p.headers.reason : undefined;
  // Decoded to plain values already (amqp_field_table.ts), and this message's own.
  const headers = undecodable === undefined && p.headers !== undefined
    ? p.headers as Record<string, unknown>
    : {};
  const replayed = headers[REDELIVERED_HEADER] === true;
  // Only when there: a delete turns the object into a slow dictionary-mode one.
  if (Object.hasOwn(headers, REDELIVERED_HEADER)) delete headers[REDELIVERED_HEADER];
  const properties: MessageProperties = {};
  for (const [ours, theirs] of PROPERTY_NAMES) {
    const v = p[theirs];
    if (v !== undefined && v !== null) properties[ours] = v;
  }
  const message: Message = {
    // A copy: amqplib's content is a view into the socket's read chunk
    // (tens of KiB), which posting the body to a Web Worker would clone whole.
    body: new Uint8Array(incoming.content),
    contentType: typeof p.contentType === "string" ? p.contentType : "",
    contentEncoding: typeof p.contentEncoding === "string" ? p.contentEncoding : "",
    headers,
    properties,
  };
  if (undecodable !== undefined) message.undecodable = `unreadable AMQP headers: ${undecodable}`;
  return {
    message,
    redelivered: incoming.fields.redelivered || replayed,
  };
}

/**
 * Why, when and from where a message was parked; kept in the
 * {@link PARKED_HEADER} header of its copy in the parking queue.
 *
 * @example
 * ```ts
 * import type { ParkingNote } from "./amqp_message.ts";
 * const note: ParkingNote = {
 *   id: crypto.randomUUID(), reason: "unregistered task", queue: "celery",
 *   taskId: null, taskName: "tasks.gone", parkedAt: new Date(),
 *   exchange: "", routingKey: "celery",
 * };
 * ```
 */
export interface ParkingNote {
  /** Identifier of the parked copy. */
  id: string;
  /** Why it was parked. */
  reason: string;
  /** The queue it came from (and goes back to when requeued). */
  queue: string;
  /** Task id, when known. */
  taskId: string | null;
  /** Task name, when known. */
  taskName: string | null;
  /** When it was parked. */
  parkedAt: Date;
  /** Exchange it was first published to. */
  exchange: string;
  /** Routing key it was first published with. */
  routingKey: string;
}

/**
 * The copy of a message that goes to the parking queue: the original with
 * the note in its headers.
 *
 * @example
 * ```ts
 * import { parkedCopy, readParkingNote } from "./amqp_message.ts";
 * const note = {
 *   id: "p1", reason: "bad body", queue: "celery", taskId: "t1", taskName: null,
 *   parkedAt: new Date(0), exchange: "", routingKey: "celery",
 * };
 * const copy = parkedCopy({
 *   body: new Uint8Array(), contentType: "application/json", contentEncoding: "utf-8",
 *   headers: { id: "t1" }, properties: {},
 * }, note);
 * readParkingNote(copy.headers)?.reason; // "bad body"
 * ```
 *
 * @param message the refused message
 * @param note the parking note
 * @returns the message to publish to the parking queue
 */
export function parkedCopy(message: Message, note: ParkingNote): Message {
  return {
    ...message,
    headers: {
      ...message.headers,
      [PARKED_HEADER]: {
        id: note.id,
        reason: note.reason,
        queue: note.queue,
        task_id: note.taskId,
        task_name: note.taskName,
        parked_at: note.parkedAt.getTime() / 1000,
        exchange: note.exchange,
        routing_key: note.routingKey,
      },
    },
  };
}

/**
 * Read the parking note of a parked copy; `null` when the headers carry none.
 *
 * @example
 * ```ts
 * import { readParkingNote } from "./amqp_message.ts";
 * readParkingNote({ task: "x" }); // null
 * ```
 *
 * @param headers headers of a message from the parking queue
 * @returns the note
 */
export function readParkingNote(headers: Record<string, unknown>): ParkingNote | null {
  const n = headers[PARKED_HEADER];
  if (n === null || typeof n !== "object") return readDeadLetterNote(headers);
  const e = n as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  return {
    id: str(e.id) ?? "",
    reason: str(e.reason) ?? "",
    queue: str(e.queue) ?? "",
    taskId: str(e.task_id),
    taskName: str(e.task_name),
    parkedAt: new Date(typeof e.parked_at === "number" ? e.parked_at * 1000 : 0),
    exchange: str(e.exchange) ?? "",
    routingKey: str(e.routing_key) ?? "",
  };
}

/** Headers RabbitMQ adds when it dead-letters a message. */
const DEAD_LETTER_HEADERS = [
  "x-death",
  "x-first-death-reason",
  "x-first-death-queue",
  "x-first-death-exchange",
  "x-last-death-reason",
  "x-last-death-queue",
  "x-last-death-exchange",
  "x-delivery-count",
];

/**
 * A note for a message RabbitMQ itself dead-lettered to the parking queue
 * (a quorum queue's `x-delivery-limit` was reached): its `x-first-death-*`
 * headers say why and from where. `null` when there are none.
 */
function readDeadLetterNote(headers: Record<string, unknown>): ParkingNote | null {
  const why = headers["x-first-death-reason"];
  const queue = headers["x-first-death-queue"];
  if (typeof why !== "string" || typeof queue !== "string") return null;
  const deaths = Array.isArray(headers["x-death"]) ? headers["x-death"] : [];
  const first = deaths.find((d) => (d as Record<string, unknown>)?.queue === queue) as
    | Record<string, unknown>
    | undefined;
  // RabbitMQ writes `time` as an AMQP timestamp, which decodes to a Date.
  const t = first?.time as unknown;
  const seconds = t instanceof Date ? t.getTime() / 1000 : typeof t === "number" ? t : 0;
  const keys = Array.isArray(first?.["routing-keys"]) ? first["routing-keys"] : [];
  return {
    id: "",
    reason: why === "delivery_limit"
      ? `RabbitMQ dead-lettered it: the queue's x-delivery-limit was reached (a poison message?)`
      : `RabbitMQ dead-lettered it: ${why}`,
    queue,
    taskId: typeof headers.id === "string" ? headers.id : null,
    taskName: typeof headers.task === "string" ? headers.task : null,
    parkedAt: new Date(seconds * 1000),
    exchange: typeof headers["x-first-death-exchange"] === "string"
      ? headers["x-first-death-exchange"]
      : "",
    routingKey: typeof keys[0] === "string" ? keys[0] : queue,
  };
}

/**
 * The message to publish when a parked copy goes back to its queue: the
 * note removed, marked as delivered before and with the id of the
 * requeue that moves it ({@link REQUEUE_HEADER}, replacing an earlier
 * requeue's).
 *
 * @example
 * ```ts
 * import { PARKED_HEADER, REDELIVERED_HEADER, REQUEUE_HEADER, unparkedMessage } from "./amqp_message.ts";
 * const m = unparkedMessage({
 *   body: new Uint8Array(), contentType: "application/json", contentEncoding: "utf-8",
 *   headers: { id: "t1", [PARKED_HEADER]: { reason: "x" } }, properties: {},
 * }, "r1");
 * m.headers[REDELIVERED_HEADER]; // true
 * m.headers[REQUEUE_HEADER]; // "r1"
 * ```
 *
 * @param parked a message read from the parking queue
 * @param requeueId the id of the requeue that moves it
 * @returns the message to put back
 */
export function unparkedMessage(parked: Message, requeueId: string): Message {
  const headers: Record<string, unknown> = {
    ...parked.headers,
    [REDELIVERED_HEADER]: true,
    [REQUEUE_HEADER]: requeueId,
  };
  delete headers[PARKED_HEADER];
  for (const h of DEAD_LETTER_HEADERS) delete headers[h];
  return { ...parked, headers };
}
