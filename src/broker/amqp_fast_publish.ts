/**
 * Publishing a simple message with its frames encoded here, in one buffer:
 * `basic.publish`, the content header and the body frames, byte for byte
 * what amqplib 2.3 sends for the same options, without its per-publish
 * work (an options object, four Buffers, a stream and a scheduled turn per
 * message). For messages without headers (rpc:// results); anything else
 * goes through amqplib.
 *
 * The frames go to the socket directly when amqplib has nothing of this
 * channel waiting to be written (else behind it, in the channel's own
 * stream, so a channel's frames keep their order), and the confirm
 * callback joins amqplib's list, in the order of the publishes.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ConfirmChannel } from "amqplib";
import type { Message } from "../protocol/message.ts";
import { AMQPLIB_PROPERTY_NAMES } from "./amqp_message.ts";

/**
 * The properties the fast path encodes, under amqplib's names.
 *
 * @example
 * ```ts
 * import type { SimpleProperties } from "./amqp_fast_publish.ts";
 * const p: SimpleProperties = {
 *   contentType: "application/json", contentEncoding: "utf-8",
 *   deliveryMode: 1, priority: 0, correlationId: "t1",
 * };
 * ```
 */
export interface SimpleProperties {
  /** MIME type of the body. */
  contentType?: string;
  /** `utf-8` or `binary`. */
  contentEncoding?: string;
  /** 1 transient, 2 persistent. */
  deliveryMode?: number;
  /** 0..255. */
  priority?: number;
  /** Correlation id. */
  correlationId?: string;
  /** Reply queue. */
  replyTo?: string;
}

const FRAME_METHOD = 1;
const FRAME_HEADER = 2;
const FRAME_BODY = 3;
const FRAME_END = 0xce;
const FRAME_OVERHEAD = 8;
const BASIC_CLASS = 60;
const BASIC_PUBLISH = 40;

const SHORT_STRINGS: readonly (readonly [keyof SimpleProperties, number])[] = [
  ["contentType", 1 << 15],
  ["contentEncoding", 1 << 14],
];
const HEADERS_FLAG = 1 << 13;
const DELIVERY_MODE_FLAG = 1 << 12;
const PRIORITY_FLAG = 1 << 11;
const LATER_STRINGS: readonly (readonly [keyof SimpleProperties, number])[] = [
  ["correlationId", 1 << 10],
  ["replyTo", 1 << 9],
];
const ALL_STRINGS = [...SHORT_STRINGS, ...LATER_STRINGS];
/** The properties (Celery's names) this fast path frames; a message with another takes amqplib's. */
const SIMPLE_PROPERTIES: ReadonlySet<string> = new Set([
  "correlation_id",
  "reply_to",
  "delivery_mode",
  "priority",
]);

function isOctet(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 255;
}

/** UTF-8 length of a string; ASCII ones (the usual names and ids) without a call into Deno. */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s);
  return s.length;
}

function isShortString(v: unknown): v is string {
  return typeof v === "string" && utf8Length(v) < 256;
}

/**
 * Write a short string (length octet, UTF-8 bytes) at `at`.
 *
 * @returns the offset after it
 */
function writeShort(buf: Buffer, at: number, s: string): number {
  let i = 0;
  while (i < s.length && s.charCodeAt(i) <= 0x7f) {
    buf[at + 1 + i] = s.charCodeAt(i);
    i++;
  }
  const n = i === s.length ? i : i + buf.write(s.slice(i), at + 1 + i, "utf8");
  buf[at] = n;
  return at + 1 + n;
}

/**
 * The frames of one publish, as amqplib 2.3 encodes them (with an empty
 * header table, as it always sends one); null when something here cannot
 * be encoded (a string longer than 255 bytes, a number out of range), for
 * amqplib to report.
 *
 * @example
 * ```ts
 * import { encodePublish } from "./amqp_fast_publish.ts";
 * const frames = encodePublish(1, 131072, "", "replies", { correlationId: "t1" }, new Uint8Array(2));
 * frames?.length; // 8 + 15 + 8 + 21 + 8 + 2
 * ```
 *
 * @param channel channel number
 * @param frameMax the connection's negotiated frame size
 * @param exchange exchange name
 * @param routingKey routing key
 * @param props the properties
 * @param body the body
 * @returns one buffer with every frame, or null
 */
export function encodePublish(
  channel: number,
  frameMax: number,
  exchange: string,
  routingKey: string,
  props: SimpleProperties,
  body: Uint8Array,
): Buffer | null {
  const publish: SimplePublish = { routingKey, body, props };
  const size = publishSize(frameMax, exchange, publish);
  if (size < 0) return null;
  const buf = Buffer.allocUnsafe(size);
  writePublish(buf, 0, channel, frameMax, exchange, publish);
  return buf;
}

/** Bytes of the frames of one publish; -1 when the fast path cannot encode it. */
function publishSize(frameMax: number, exchange: string, publish: SimplePublish): number {
  const { routingKey, props } = publish;
  const bodyLength = publish.body.length;
  if (!isShortString(exchange) || !isShortString(routingKey)) return -1;
  const maxBody = frameMax - FRAME_OVERHEAD;
  if (!(maxBody > 0)) return -1;
  let propsSize = 2 + 4; // flags, empty header table
  for (const [name] of ALL_STRINGS) {
    const v = props[name];
    if (v === undefined) continue;
    if (!isShortString(v)) return -1;
    propsSize += 1 + utf8Length(v);
  }
  if (props.deliveryMode !== undefined) {
    if (!isOctet(props.deliveryMode)) return -1;
    propsSize += 1;
  }
  if (props.priority !== undefined) {
    if (!isOctet(props.priority)) return -1;
    propsSize += 1;
  }
  const methodSize = 4 + 2 + 1 + utf8Length(exchange) + 1 + utf8Length(routingKey) + 1;
  const headerSize = 2 + 2 + 8 + propsSize;
  const bodyFrames = Math.ceil(bodyLength / maxBody);
  return methodSize + headerSize + 2 * FRAME_OVERHEAD + bodyLength + bodyFrames * FRAME_OVERHEAD;
}

/**
 * Write the frames of one publish (checked by {@link publishSize}) at `start`.
 *
 * @returns the offset after them
 */
function writePublish(
  buf: Buffer,
  start: number,
  channel: number,
  frameMax: number,
  exchange: string,
  publish: SimplePublish,
): number {
  const { routingKey, props, body } = publish;
  const maxBody = frameMax - FRAME_OVERHEAD;
  // Each frame's 7-byte head (type, channel, size) is written once its payload is.
  let at = buf.writeUInt16BE(BASIC_CLASS, start + 7);
  at = buf.writeUInt16BE(BASIC_PUBLISH, at);
  at = buf.writeUInt16BE(0, at);
  at = writeShort(buf, at, exchange);
  at = writeShort(buf, at, routingKey);
  buf[at++] = 0; // mandatory, immediate: off
  frameStart(buf, start, FRAME_METHOD, channel, at - start - 7);
  buf[at++] = FRAME_END;

  const headerAt = at;
  at = buf.writeUInt16BE(BASIC_CLASS, at + 7);
  at = buf.writeUInt16BE(0, at);
  at = buf.writeUInt32BE(Math.floor(body.length / 2 ** 32), at);
  at = buf.writeUInt32BE(body.length % 2 ** 32, at);
  const flagsAt = at;
  at += 2;
  let flags = HEADERS_FLAG;
  for (const [name, flag] of SHORT_STRINGS) {
    const v = props[name] as string | undefined;
    if (v === undefined) continue;
    flags |= flag;
    at = writeShort(buf, at, v);
  }
  at = buf.writeUInt32BE(0, at);
  if (props.deliveryMode !== undefined) {
    flags |= DELIVERY_MODE_FLAG;
    buf[at++] = props.deliveryMode;
  }
  if (props.priority !== undefined) {
    flags |= PRIORITY_FLAG;
    buf[at++] = props.priority;
  }
  for (const [name, flag] of LATER_STRINGS) {
    const v = props[name] as string | undefined;
    if (v === undefined) continue;
    flags |= flag;
    at = writeShort(buf, at, v);
  }
  buf.writeUInt16BE(flags, flagsAt);
  frameStart(buf, headerAt, FRAME_HEADER, channel, at - headerAt - 7);
  buf[at++] = FRAME_END;

  for (let from = 0; from < body.length; from += maxBody) {
    const end = Math.min(from + maxBody, body.length);
    at = frameStart(buf, at, FRAME_BODY, channel, end - from);
    buf.set(from === 0 && end === body.length ? body : body.subarray(from, end), at);
    at += end - from;
    buf[at++] = FRAME_END;
  }
  return at;
}

function frameStart(buf: Buffer, at: number, type: number, channel: number, size: number): number {
  buf[at] = type;
  buf.writeUInt16BE(channel, at + 1);
  return buf.writeUInt32BE(size, at + 3);
}

/** The amqplib internals the fast path uses (amqplib 2.3). */
interface ChannelInternals {
  ch: number;
  connection: {
    frameMax: number;
    sentSinceLastCheck: boolean;
    stream: { write(chunk: Uint8Array): boolean };
    channels: (
      | { channel: unknown; buffer: { readableLength: number; write(b: Buffer): boolean } }
      | null
    )[];
  };
  pushConfirmCallback(cb: (err: unknown) => void): void;
}

/**
 * Publish on a confirm channel with the frames encoded here; falls back
 * to amqplib's `publish` for what the fast path does not encode and for a
 * channel or connection that is closing or closed (amqplib then throws,
 * as it would).
 *
 * It reports no back-pressure: frames written to the socket directly never
 * pass through the channel's buffer, so a full socket is not followed by
 * the channel's `drain` that amqplib's `false` asks to wait for. Callers
 * bound what they have in flight by its confirms.
 *
 * @example
 * ```ts ignore
 * publishSimple(channel, "", "replies", body, { correlationId: "t1", deliveryMode: 1 }, (err) => {});
 * ```
 *
 * @param channel an open amqplib confirm channel
 * @param exchange exchange name
 * @param routingKey routing key
 * @param body the body
 * @param props the properties
 * @param confirmed called with null once the server confirmed, with an error otherwise
 */
export function publishSimple(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: Uint8Array,
  props: SimpleProperties,
  confirmed: (err: unknown) => void,
): void {
  const c = channel as unknown as ChannelInternals;
  // amqplib replaces `sendMessage` on a channel, and on its connection,
  // that is closing or closed: nothing may be written after their close.
  const closing = Object.hasOwn(channel, "sendMessage") ||
    Object.hasOwn(c.connection, "sendMessage");
  const slot = closing ? null : c.connection.channels[c.ch];
  const frames = slot?.channel === channel
    ? encodePublish(c.ch, c.connection.frameMax, exchange, routingKey, props, body)
    : null;
  if (!slot || !frames) {
    const content = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    channel.publish(exchange, routingKey, content, { ...props, headers: {} }, confirmed);
    return;
  }
  if (slot.buffer.readableLength === 0) c.connection.stream.write(frames);
  else slot.buffer.write(frames);
  c.connection.sentSinceLastCheck = true;
  c.pushConfirmCallback(confirmed);
}

/**
 * One publish of {@link publishSimpleBatch}.
 *
 * @example
 * ```ts
 * import type { SimplePublish } from "./amqp_fast_publish.ts";
 * const p: SimplePublish = {
 *   routingKey: "replies",
 *   body: new TextEncoder().encode("{}"),
 *   props: { contentType: "application/json", correlationId: "t1", deliveryMode: 1 },
 * };
 * ```
 */
export interface SimplePublish {
  /** Routing key (the queue, on the default exchange). */
  readonly routingKey: string;
  /** The body. */
  readonly body: Uint8Array;
  /** The properties. */
  readonly props: SimpleProperties;
}

/**
 * Publish several messages on a confirm channel as {@link publishSimple}
 * does, their frames in one buffer and one socket write; false (nothing
 * sent) when the fast path cannot take them all (one that it does not
 * encode, a channel or connection closing or closed): the caller then
 * publishes them one by one.
 *
 * @example
 * ```ts ignore
 * const sent = publishSimpleBatch(channel, "", publishes, (i, err) => {
 *   if (err) console.log(`publish ${i} failed`);
 * });
 * ```
 *
 * @param channel an open amqplib confirm channel
 * @param exchange exchange name
 * @param publishes the messages, in order
 * @param confirmed called once per message, with its index and null once the server confirmed
 *   it, an error otherwise
 * @returns whether they were sent
 */
export function publishSimpleBatch(
  channel: ConfirmChannel,
  exchange: string,
  publishes: readonly SimplePublish[],
  confirmed: (index: number, err: unknown) => void,
): boolean {
  const c = channel as unknown as ChannelInternals;
  if (Object.hasOwn(channel, "sendMessage") || Object.hasOwn(c.connection, "sendMessage")) {
    return false;
  }
  const slot = c.connection.channels[c.ch];
  if (slot?.channel !== channel) return false;
  const { frameMax } = c.connection;
  let total = 0;
  for (const p of publishes) {
    const size = publishSize(frameMax, exchange, p);
    if (size < 0) return false;
    total += size;
  }
  const buf = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of publishes) {
    at = writePublish(buf, at, c.ch, frameMax, exchange, p);
  }
  if (slot.buffer.readableLength === 0) c.connection.stream.write(buf);
  else slot.buffer.write(buf);
  c.connection.sentSinceLastCheck = true;
  for (let i = 0; i < publishes.length; i++) {
    c.pushConfirmCallback((err) => confirmed(i, err));
  }
  return true;
}

/**
 * A message's properties for {@link publishSimple}; null when it has
 * headers or a property the fast path does not encode.
 *
 * @example
 * ```ts
 * import { simpleProperties } from "./amqp_fast_publish.ts";
 * simpleProperties({
 *   body: new Uint8Array(), contentType: "application/json", contentEncoding: "utf-8",
 *   headers: {}, properties: { correlation_id: "t1", delivery_mode: 1, priority: 0 },
 * });
 * // { contentType: "application/json", contentEncoding: "utf-8", correlationId: "t1",
 * //   deliveryMode: 1, priority: 0 }
 * ```
 *
 * @param message the message
 * @returns the properties under amqplib's names, or null
 */
export function simpleProperties(message: Message): SimpleProperties | null {
  for (const _ in message.headers) return null;
  const out: SimpleProperties = {
    contentType: message.contentType,
    contentEncoding: message.contentEncoding,
  };
  for (const key in message.properties) {
    const v = message.properties[key];
    if (v === undefined || v === null) continue;
    if (!SIMPLE_PROPERTIES.has(key)) return null;
    (out as Record<string, unknown>)[AMQPLIB_PROPERTY_NAMES[key]] = v;
  }
  return out;
}
