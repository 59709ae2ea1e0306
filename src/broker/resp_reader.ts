/**
 * Parsing Redis replies (RESP2, and the RESP3 types a subscriber that
 * said `HELLO 3` is sent: pushes, maps, nulls) from the socket's own read buffer: the
 * socket reads into {@link RespReader.space}, and each complete reply is
 * handed out with its bulk strings as views of that buffer (no copy), valid
 * while the handler runs. A reply split across reads waits for the rest;
 * a bulk string larger than the buffer grows it once to its known size.
 * Pure: no I/O.
 *
 * @module
 */

/**
 * An error reply from Redis (`-ERR ...`, `-WRONGPASS ...`): its first word
 * is the code.
 *
 * @example
 * ```ts
 * import { RedisReplyError } from "./resp_reader.ts";
 * const err = new RedisReplyError("WRONGPASS invalid username-password pair");
 * err.code; // "WRONGPASS"
 * ```
 */
export class RedisReplyError extends Error {
  /** The error's first word, e.g. `ERR`, `WRONGPASS`, `NOAUTH`. */
  readonly code: string;

  /** @param message the error line as Redis sent it */
  constructor(message: string) {
    super(message);
    this.name = "RedisReplyError";
    this.code = /^\S+/.exec(message)?.[0] ?? "ERR";
  }
}

/**
 * Bytes that are not RESP: the connection cannot be read further.
 *
 * @example
 * ```ts
 * import { RespProtocolError } from "./resp_reader.ts";
 * new RespProtocolError("unexpected byte 0x3f").code; // "RESP_PROTOCOL"
 * ```
 */
export class RespProtocolError extends Error {
  /** Stable code for programmatic checks. */
  readonly code = "RESP_PROTOCOL";

  /** @param message what was wrong */
  constructor(message: string) {
    super(message);
    this.name = "RespProtocolError";
  }
}

/**
 * A reply: simple strings as text, integers as numbers, bulk strings as
 * bytes (views of the read buffer), nil as null, arrays, error replies as
 * {@link RedisReplyError}.
 *
 * @example
 * ```ts
 * import type { RespValue } from "./resp_reader.ts";
 * const v: RespValue = ["message", new Uint8Array(), 1];
 * ```
 */
export type RespValue = string | number | null | Uint8Array | RedisReplyError | RespValue[];

/** Returned by the parse steps for a reply not complete yet. */
const INCOMPLETE = Symbol("incomplete");
/** {@link RespReader}'s bulk-string step: a nil (`$-1`). */
const NIL = -1;
/** {@link RespReader}'s bulk-string step: its bytes have not all arrived. */
const PARTIAL = -2;

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder();

/**
 * Reads RESP2 replies (and RESP3 pushes, maps and nulls) from a buffer
 * the socket fills.
 *
 * @example
 * ```ts
 * import { RespReader } from "./resp_reader.ts";
 * const r = new RespReader();
 * const bytes = new TextEncoder().encode(":42\r\n+OK\r\n");
 * r.space(bytes.length).set(bytes);
 * r.commit(bytes.length);
 * const got: unknown[] = [];
 * r.drain((v) => got.push(v));
 * got; // [42, "OK"]
 * ```
 */
export class RespReader {
  #buf: Uint8Array;
  /** Start of the first reply not handed out yet. */
  #start = 0;
  /** End of the bytes read. */
  #end = 0;
  /** Parse position while a reply is read. */
  #pos = 0;
  /** No complete reply can end before this offset (from a known bulk length). */
  #needed = 0;

  /**
   * @param initialSize the buffer's first size in bytes (it grows for larger replies). Default 64 KiB.
   */
  constructor(initialSize = 64 * 1024) {
    this.#buf = new Uint8Array(initialSize);
  }

  /**
   * Free room at the end of the buffer for the next read, at least
   * `min` bytes (and what a reply known to be pending needs).
   *
   * @param min bytes of room wanted. Default 16 KiB.
   * @returns the view to read into
   */
  space(min = 16 * 1024): Uint8Array {
    const want = Math.max(min, this.#needed - this.#end);
    if (this.#buf.length - this.#end < want) {
      const pending = this.#end - this.#start;
      if (this.#buf.length >= pending + want && this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        let size = this.#buf.length * 2;
        while (size < pending + want) size *= 2;
        const grown = new Uint8Array(size);
        grown.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = grown;
      }
      this.#needed = Math.max(0, this.#needed - this.#start);
      this.#start = 0;
      this.#end = pending;
    }
    return this.#buf.subarray(this.#end);
  }

  /**
   * Count `n` bytes just read into {@link RespReader.space}.
   *
   * @param n bytes read
   */
  commit(n: number): void {
    this.#end += n;
  }

  /**
   * Hand every complete reply to `onReply`, in order. Bulk strings are
   * views of the buffer: valid until `onReply` returns.
   *
   * @param onReply called with each reply, and whether it is an array handed out whole
   * @param whole asked before an array reply: true hands it out as one view
   *   of its RESP bytes (`*N\r\n` and its elements as sent) instead of an
   *   array of values, none made (see `RespConnection.command` with `whole`)
   * @throws {RespProtocolError} on bytes that are not RESP
   */
  drain(onReply: (reply: RespValue, whole: boolean) => void, whole?: () => boolean): void {
    while (this.#start < this.#end && this.#end >= this.#needed) {
      this.#pos = this.#start;
      const asWhole = whole !== undefined && this.#buf[this.#start] === 0x2a && whole();
      const v = asWhole ? this.#whole() : this.#value();
      if (v === INCOMPLETE) return;
      this.#start = this.#pos;
      this.#needed = 0;
      onReply(v, asWhole);
    }
    if (this.#start === this.#end) this.#start = this.#end = this.#needed = 0;
  }

  #value(): RespValue | typeof INCOMPLETE {
    const b = this.#buf;
    if (this.#pos >= this.#end) return INCOMPLETE;
    const kind = b[this.#pos];
    const lineEnd = this.#lineEnd(this.#pos + 1);
    if (lineEnd < 0) return INCOMPLETE;
    const lineStart = this.#pos + 1;
    this.#pos = lineEnd + 2;
    switch (kind) {
      case 0x24: { // $ bulk string
        const start = this.#pos;
        const end = this.#bulkEnd(lineStart, lineEnd);
        return end === NIL ? null : end === PARTIAL ? INCOMPLETE : b.subarray(start, end);
      }
      case 0x2a: // * array
      case 0x3e: // > push (RESP3): read as an array
      case 0x25: { // % map (RESP3): read as an array of its keys and values in turn
        const entries = this.#integer(lineStart, lineEnd);
        if (entries < 0) return null;
        const n = kind === 0x25 ? 2 * entries : entries;
        const items: RespValue[] = new Array(n);
        for (let i = 0; i < n; i++) {
          const item = this.#value();
          if (item === INCOMPLETE) return INCOMPLETE;
          items[i] = item;
        }
        return items;
      }
      case 0x5f: // _ null (RESP3)
        return null;
      case 0x3a: // : integer
        return this.#integer(lineStart, lineEnd);
      case 0x2b: // + simple string
        return this.#isOk(lineStart, lineEnd)
          ? "OK"
          : latin1.decode(b.subarray(lineStart, lineEnd));
      case 0x2d: // - error
        return new RedisReplyError(utf8.decode(b.subarray(lineStart, lineEnd)));
      default:
        throw new RespProtocolError(
          `unexpected byte 0x${kind.toString(16).padStart(2, "0")} at the start of a reply`,
        );
    }
  }

  /** The reply at `#pos` as one view of its bytes, or INCOMPLETE. */
  #whole(): Uint8Array | typeof INCOMPLETE {
    const from = this.#pos;
    return this.#over() ? this.#buf.subarray(from, this.#pos) : INCOMPLETE;
  }

  /** Step over one reply, making none of its values: false when it is not complete yet. */
  #over(): boolean {
    const b = this.#buf;
    if (this.#pos >= this.#end) return false;
    const kind = b[this.#pos];
    const lineEnd = this.#lineEnd(this.#pos + 1);
    if (lineEnd < 0) return false;
    const lineStart = this.#pos + 1;
    this.#pos = lineEnd + 2;
    switch (kind) {
      case 0x24: // $ bulk string
        return this.#bulkEnd(lineStart, lineEnd) !== PARTIAL;
      case 0x2a: // * array
      case 0x3e: // > push (RESP3)
      case 0x25: { // % map (RESP3)
        const entries = this.#integer(lineStart, lineEnd);
        const n = kind === 0x25 ? 2 * entries : entries;
        for (let i = 0; i < n; i++) if (!this.#over()) return false;
        return true;
      }
      case 0x5f: // _ null (RESP3)
      case 0x3a: // : integer
      case 0x2b: // + simple string
      case 0x2d: // - error
        return true;
      default:
        throw new RespProtocolError(
          `unexpected byte 0x${kind.toString(16).padStart(2, "0")} in an array reply`,
        );
    }
  }

  /**
   * Step over a bulk string whose length line is `from`..`to` (`#pos` is
   * past that line): where its bytes end, or {@link NIL} for a nil, or
   * {@link PARTIAL} when they have not all arrived (`#needed` says how many).
   */
  #bulkEnd(from: number, to: number): number {
    const n = this.#integer(from, to);
    if (n < 0) return NIL;
    const end = this.#pos + n;
    if (end + 2 > this.#end) {
      this.#needed = end + 2;
      return PARTIAL;
    }
    if (this.#buf[end] !== 0x0d || this.#buf[end + 1] !== 0x0a) {
      throw new RespProtocolError(`bulk string of ${n} bytes not followed by CRLF`);
    }
    this.#pos = end + 2;
    return end;
  }

  /** Whether the line is `OK` (most simple-string replies): the constant, without decoding. */
  #isOk(from: number, to: number): boolean {
    return to - from === 2 && this.#buf[from] === 0x4f && this.#buf[from + 1] === 0x4b;
  }

  /** Offset of the CR of the CRLF ending the line that starts at `from`, or -1. */
  #lineEnd(from: number): number {
    const b = this.#buf;
    for (let i = from; i + 1 < this.#end; i++) {
      if (b[i] === 0x0d) {
        if (b[i + 1] !== 0x0a) throw new RespProtocolError("CR not followed by LF");
        return i;
      }
    }
    return -1;
  }

  #integer(from: number, to: number): number {
    const b = this.#buf;
    let i = from;
    const negative = b[i] === 0x2d;
    if (negative) i++;
    if (i >= to) throw new RespProtocolError("empty number");
    let n = 0;
    for (; i < to; i++) {
      const d = b[i] - 0x30;
      if (d < 0 || d > 9) throw new RespProtocolError("malformed number");
      n = n * 10 + d;
    }
    return negative ? -n : n;
  }
}

const MESSAGE = [0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65]; // "message"

/**
 * Whether a push's first element is `message` or `pmessage` (a pub/sub
 * message, not the reply to a command).
 *
 * @example
 * ```ts
 * import { isMessage } from "./resp_reader.ts";
 * isMessage(new TextEncoder().encode("pmessage")); // true
 * ```
 *
 * @param kind the push's first element
 * @returns whether it names a message
 */
export function isMessage(kind: RespValue): boolean {
  if (!(kind instanceof Uint8Array)) return false;
  const off = kind.length === 8 && kind[0] === 0x70 ? 1 : 0;
  if (kind.length !== 7 + off) return false;
  for (let i = 0; i < 7; i++) if (kind[i + off] !== MESSAGE[i]) return false;
  return true;
}

/**
 * A reply with its bulk strings copied out of the read buffer (which the
 * next read overwrites).
 *
 * @example
 * ```ts
 * import { copyReply } from "./resp_reader.ts";
 * copyReply([new Uint8Array([1]), 2]); // [Uint8Array [1], 2], the bytes copied
 * ```
 *
 * @param v the reply
 * @returns the copy
 */
export function copyReply(v: RespValue): RespValue {
  if (v instanceof Uint8Array) return v.slice();
  if (Array.isArray(v)) return v.map(copyReply);
  return v;
}
