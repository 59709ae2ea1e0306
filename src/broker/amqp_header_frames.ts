/**
 * Message headers decoded by Celeriac instead of amqplib. amqplib throws
 * on a header type it does not know (py-amqp's `L`, written for any
 * integer beyond ±2^31), and a throw while decoding a frame ends the
 * connection: the message goes back to its queue, comes again on the next
 * connection and ends that one too, for ever. amqplib's table decoder
 * cannot be replaced from outside (its generated property decoders hold
 * their own reference to it), so the connection's frame reader is wrapped
 * instead: before amqplib decodes a content-header frame, the headers
 * table is cut out of it and decoded by `amqp_field_table.ts`; amqplib
 * decodes the rest of the frame as before, and the headers are put back
 * into its result. A table that cannot be decoded becomes an
 * {@link UndecodableHeaders}, which the broker turns into a message the
 * worker parks.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { decodeFieldTable } from "./amqp_field_table.ts";

const FRAME_HEADER = 2;
const FRAME_END = 0xce;
/** Type octet, channel (2), payload size (4). */
const FRAME_PREFIX = 7;
const BASIC_CLASS = 60;
/** Class (2), weight (2), body size (8), then the property flags (2). */
const FLAGS_AT = 12;
const CONTENT_TYPE = 0x8000;
const CONTENT_ENCODING = 0x4000;
const HEADERS = 0x2000;
const MORE_FLAGS = 0x0001;

/**
 * Headers that could not be decoded, in place of the headers table of a
 * delivered message.
 *
 * @example
 * ```ts
 * import { UndecodableHeaders } from "./amqp_header_frames.ts";
 * const h = new UndecodableHeaders('unknown type tag "?"');
 * h.reason; // 'unknown type tag "?"'
 * ```
 */
export class UndecodableHeaders {
  /** Why they could not be decoded. */
  readonly reason: string;

  /** @param reason why they could not be decoded */
  constructor(reason: string) {
    this.reason = reason;
  }
}

/**
 * Decode the headers table cut out of a frame.
 *
 * @example
 * ```ts
 * import { decodeHeaders } from "./amqp_header_frames.ts";
 * decodeHeaders(new Uint8Array([1, 107, 86])); // { k: null }
 * decodeHeaders(new Uint8Array([1, 107, 63])); // an UndecodableHeaders
 * ```
 *
 * @param table the table's entries
 * @returns the headers, or why they could not be decoded
 */
export function decodeHeaders(table: Uint8Array): Record<string, unknown> | UndecodableHeaders {
  try {
    return decodeFieldTable(table);
  } catch (err) {
    return new UndecodableHeaders((err as Error).message);
  }
}

/**
 * A content-header frame at the start of `rest` split into the same frame
 * without its headers table, and the table.
 *
 * @example
 * ```ts ignore
 * const split = splitHeaderFrame(connection.rest, 131072);
 * if (split) console.log(split.frame.length, split.table.length, split.end);
 * ```
 */
export interface SplitFrame {
  /** The whole frame, without the headers table (and its flag). */
  frame: Buffer;
  /** The table's entries. */
  table: Uint8Array;
  /** Where the original frame ends in `rest`. */
  end: number;
}

/**
 * Split the frame at the start of `rest` when it is a complete basic
 * content-header frame carrying headers; `null` for anything else (left to
 * amqplib: other frames, frames not fully read yet, malformed ones).
 *
 * @example
 * ```ts
 * splitHeaderFrame(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce]), 0); // null: a heartbeat
 * ```
 *
 * @param rest the bytes read and not decoded yet
 * @param maxFrameSize the connection's limit (0: none)
 * @returns the split frame, or null
 */
export function splitHeaderFrame(rest: Buffer, maxFrameSize: number): SplitFrame | null {
  if (rest.length < FRAME_PREFIX + FLAGS_AT + 2 || rest[0] !== FRAME_HEADER) return null;
  const size = rest.readUInt32BE(3);
  const end = FRAME_PREFIX + size + 1;
  if ((maxFrameSize > 0 && size > maxFrameSize) || rest.length < end) return null;
  if (rest[end - 1] !== FRAME_END || size < FLAGS_AT + 2) return null;
  const payload = rest.subarray(FRAME_PREFIX, FRAME_PREFIX + size);
  const flags = payload.readUInt16BE(FLAGS_AT);
  if (payload.readUInt16BE(0) !== BASIC_CLASS || !(flags & HEADERS) || flags & MORE_FLAGS) {
    return null;
  }
  let at = FLAGS_AT + 2;
  for (const flag of [CONTENT_TYPE, CONTENT_ENCODING]) {
    if (flags & flag) at += 1 + (payload[at] ?? 0);
  }
  if (at + 4 > size) return null;
  const tableStart = at + 4;
  const tableEnd = tableStart + payload.readUInt32BE(at);
  if (tableEnd > size) return null;
  const newSize = size - (tableEnd - at);
  const frame = Buffer.allocUnsafe(FRAME_PREFIX + newSize + 1);
  rest.copy(frame, 0, 0, 3);
  frame.writeUInt32BE(newSize, 3);
  payload.copy(frame, FRAME_PREFIX, 0, FLAGS_AT);
  frame.writeUInt16BE(flags & ~HEADERS, FRAME_PREFIX + FLAGS_AT);
  payload.copy(frame, FRAME_PREFIX + FLAGS_AT + 2, FLAGS_AT + 2, at);
  payload.copy(frame, FRAME_PREFIX + at, tableEnd);
  frame[frame.length - 1] = FRAME_END;
  return { frame, table: payload.subarray(tableStart, tableEnd), end };
}

/** The part of amqplib's connection the frame reader uses. */
interface FrameReader {
  rest: Buffer;
  maxFrameSize: number;
  recvFrame(): false | { fields?: Record<string, unknown> };
}

/**
 * Make amqplib's connection read message headers with Celeriac's decoder
 * (see the module documentation). Does nothing when the connection does
 * not look like amqplib's.
 *
 * @example
 * ```ts ignore
 * const model = await amqp.connect(url);
 * decodeHeadersOurselves(model);
 * ```
 *
 * @param model amqplib's channel model
 */
export function decodeHeadersOurselves(model: object): void {
  const connection = (model as { connection?: FrameReader }).connection;
  if (!connection || typeof connection.recvFrame !== "function") return;
  const recv = connection.recvFrame;
  connection.recvFrame = function (this: FrameReader) {
    const split = splitHeaderFrame(this.rest, this.maxFrameSize);
    if (split === null) return recv.call(this);
    const after = this.rest.subarray(split.end);
    // amqplib parses the complete frame it is given and reads nothing from the socket.
    this.rest = split.frame;
    let frame;
    try {
      frame = recv.call(this);
    } finally {
      this.rest = after;
    }
    if (frame && frame.fields) frame.fields.headers = decodeHeaders(split.table);
    return frame;
  };
}
