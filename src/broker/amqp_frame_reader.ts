/**
 * The frames a consumer and a confirming publisher receive most —
 * `basic.deliver`, `basic.ack`, content headers and bodies — read here, in
 * place, instead of by amqplib. amqplib's reader copies every chunk read
 * from the socket onto what was left of the last one (`Buffer.concat`),
 * makes two Buffers per frame (its payload and the rest) and, for a content
 * header, a Buffer per string and table it decodes; in Deno each Buffer is
 * a Node `FastBuffer`, which costs more to make than a plain view. Here a
 * chunk is kept as read, frames are read at an offset into it, and only a
 * body gets a Buffer (its content, as amqplib gives it).
 *
 * The frames are the objects amqplib's `decodeFrame` returns, with the same
 * fields, so its channels accept them unchanged; message headers are
 * decoded by `amqp_field_table.ts` (an undecodable table becomes
 * {@link UndecodableHeaders}, see `amqp_header_frames.ts`). Any other
 * frame, and any frame whose lengths do not add up, goes to amqplib's own
 * reader (wrapped by `decodeHeadersOurselves`), which decodes it, or throws,
 * as before.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { decodeFieldTableAt } from "./amqp_field_table.ts";
import { UndecodableHeaders } from "./amqp_header_frames.ts";
import { utf8At } from "./amqp_text_cache.ts";

const FRAME_METHOD = 1;
const FRAME_HEADER = 2;
const FRAME_BODY = 3;
const FRAME_END = 0xce;
/** Type octet, channel (2), payload size (4). */
const FRAME_PREFIX = 7;
const BASIC_CLASS = 60;
/** amqplib's method ids: class << 16 | method. */
const BASIC_DELIVER = (60 << 16) | 60;
const BASIC_ACK = (60 << 16) | 80;
const TWO_32 = 4294967296;

/** The part of amqplib's connection the reader uses. */
export interface FrameSource {
  /** Bytes read and not decoded yet. */
  rest: Buffer;
  /** The connection's frame size limit (0: none). */
  maxFrameSize: number;
  /** Told that something was read (for heartbeats). */
  recvSinceLastCheck: boolean;
  /** The socket. */
  stream: { read(): Buffer | null };
  /** The next decoded frame, or false when none is complete yet. */
  recvFrame(): unknown;
}

/** The content-header properties as amqplib's `decodeBasicProperties` returns them. */
interface BasicProperties {
  contentType: string | undefined;
  contentEncoding: string | undefined;
  headers: Record<string, unknown> | UndecodableHeaders | undefined;
  deliveryMode: number | undefined;
  priority: number | undefined;
  correlationId: string | undefined;
  replyTo: string | undefined;
  expiration: string | undefined;
  messageId: string | undefined;
  timestamp: number | undefined;
  type: string | undefined;
  userId: string | undefined;
  appId: string | undefined;
  clusterId: string | undefined;
}

function u16(b: Buffer, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

function u32(b: Buffer, at: number): number {
  return ((b[at] << 24) >>> 0) + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
}

function u64(b: Buffer, at: number): number {
  return u32(b, at) * TWO_32 + u32(b, at + 4);
}

/** Reads the short strings of one payload; `at` moves along, `bad` says a length passed `end`. */
class PayloadReader {
  at: number;
  bad = false;
  readonly #buf: Buffer;
  readonly #end: number;

  constructor(buf: Buffer, at: number, end: number) {
    this.#buf = buf;
    this.at = at;
    this.#end = end;
  }

  shortString(): string {
    const len = this.#buf[this.at];
    const at = this.at + 1;
    this.at = at + len;
    if (this.at > this.#end) {
      this.bad = true;
      return "";
    }
    return utf8At(this.#buf, at, len);
  }
}

function deliver(b: Buffer, channel: number, at: number, end: number): object | null {
  const r = new PayloadReader(b, at, end);
  const consumerTag = r.shortString();
  if (r.bad || r.at + 9 > end) return null;
  const deliveryTag = u64(b, r.at);
  const redelivered = (b[r.at + 8] & 1) === 1;
  r.at += 9;
  const exchange = r.shortString();
  const routingKey = r.shortString();
  if (r.bad) return null;
  return {
    id: BASIC_DELIVER,
    channel,
    fields: { consumerTag, deliveryTag, redelivered, exchange, routingKey },
  };
}

function properties(b: Buffer, flags: number, r: PayloadReader, end: number) {
  const p: BasicProperties = {
    contentType: undefined,
    contentEncoding: undefined,
    headers: undefined,
    deliveryMode: undefined,
    priority: undefined,
    correlationId: undefined,
    replyTo: undefined,
    expiration: undefined,
    messageId: undefined,
    timestamp: undefined,
    type: undefined,
    userId: undefined,
    appId: undefined,
    clusterId: undefined,
  };
  if (flags & 0x8000) p.contentType = r.shortString();
  if (flags & 0x4000) p.contentEncoding = r.shortString();
  if (flags & 0x2000) {
    if (r.bad || r.at + 4 > end) return null;
    const start = r.at + 4;
    const stop = start + u32(b, r.at);
    if (stop > end) return null;
    try {
      p.headers = decodeFieldTableAt(b, start, stop);
    } catch (err) {
      p.headers = new UndecodableHeaders((err as Error).message);
    }
    r.at = stop;
  }
  if (flags & 0x1000) p.deliveryMode = b[r.at++];
  if (flags & 0x0800) p.priority = b[r.at++];
  if (flags & 0x0400) p.correlationId = r.shortString();
  if (flags & 0x0200) p.replyTo = r.shortString();
  if (flags & 0x0100) p.expiration = r.shortString();
  if (flags & 0x0080) p.messageId = r.shortString();
  if (flags & 0x0040) {
    if (r.at + 8 > end) return null;
    p.timestamp = u64(b, r.at);
    r.at += 8;
  }
  if (flags & 0x0020) p.type = r.shortString();
  if (flags & 0x0010) p.userId = r.shortString();
  if (flags & 0x0008) p.appId = r.shortString();
  if (flags & 0x0004) p.clusterId = r.shortString();
  return r.bad || r.at > end ? null : p;
}

function contentHeader(b: Buffer, channel: number, at: number, end: number): object | null {
  // Class (2), weight (2), body size (8), property flags (2); more flags (bit 0): amqplib's.
  if (end - at < 14 || u16(b, at) !== BASIC_CLASS) return null;
  const flags = u16(b, at + 12);
  if (flags & 1) return null;
  const size = u64(b, at + 4);
  const fields = flags === 0 ? {} : properties(b, flags, new PayloadReader(b, at + 14, end), end);
  return fields === null ? null : { id: BASIC_CLASS, channel, size, fields };
}

/**
 * The frame in `b[at, end)` (its payload) as amqplib decodes it, or null
 * when it is left to amqplib.
 */
function decode(b: Buffer, type: number, channel: number, at: number, end: number): object | null {
  if (type === FRAME_BODY) return { channel, content: b.subarray(at, end) };
  if (type === FRAME_HEADER) return contentHeader(b, channel, at, end);
  if (type !== FRAME_METHOD || end - at < 4) return null;
  const id = u32(b, at);
  if (id === BASIC_DELIVER) return deliver(b, channel, at + 4, end);
  if (id === BASIC_ACK && end - at >= 13) {
    const fields = { deliveryTag: u64(b, at + 4), multiple: (b[at + 12] & 1) === 1 };
    return { id, channel, fields };
  }
  return null;
}

/**
 * Make amqplib's connection read its frames with this module's reader (see
 * the module documentation); the frames it leaves go to the reader the
 * connection had (install `decodeHeadersOurselves` first). Does nothing
 * when the connection does not look like amqplib's.
 *
 * @example
 * ```ts ignore
 * const model = await amqp.connect(url);
 * decodeHeadersOurselves(model);
 * readFramesInPlace(model);
 * ```
 *
 * @param model amqplib's channel model, opened
 */
export function readFramesInPlace(model: object): void {
  const connection = (model as { connection?: FrameSource }).connection;
  if (
    !connection || typeof connection.recvFrame !== "function" ||
    typeof connection.stream?.read !== "function" || !(connection.rest instanceof Uint8Array)
  ) return;
  const slow = connection.recvFrame;
  let buf = connection.rest;
  let off = 0;
  const bySlowReader = () => {
    connection.rest = off === 0 ? buf : buf.subarray(off);
    try {
      return slow.call(connection);
    } finally {
      buf = connection.rest;
      off = 0;
    }
  };
  connection.recvFrame = () => {
    while (true) {
      if (buf.length - off >= FRAME_PREFIX) {
        const size = u32(buf, off + 3);
        const end = off + FRAME_PREFIX + size + 1;
        const max = connection.maxFrameSize;
        if (max > 0 && size > max) return bySlowReader();
        if (buf.length >= end) {
          if (buf[end - 1] !== FRAME_END) return bySlowReader();
          const channel = u16(buf, off + 1);
          const frame = decode(buf, buf[off], channel, off + FRAME_PREFIX, end - 1);
          if (frame === null) return bySlowReader();
          off = end;
          return frame;
        }
      }
      const incoming = connection.stream.read();
      if (incoming === null) return false;
      connection.recvSinceLastCheck = true;
      // A frame cut by the end of the last chunk: its start joins this chunk (amqplib
      // copied every chunk so); otherwise the chunk is read as it is.
      buf = off < buf.length ? Buffer.concat([buf.subarray(off), incoming]) : incoming;
      off = 0;
    }
  };
}
