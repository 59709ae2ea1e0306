/**
 * Framing Redis commands (RESP2 arrays of bulk strings) straight into a
 * reusable byte buffer: no command objects, no argument arrays kept, a
 * payload given as bytes is copied once, into the buffer the socket write
 * takes. Pure: no I/O.
 *
 * @module
 */

const utf8 = new TextEncoder();
const CRLF_0 = 0x0d;
const CRLF_1 = 0x0a;

/**
 * Writes RESP commands into a growing buffer; {@link RespWriter.take}
 * hands the bytes written so far to the socket and starts a new buffer.
 *
 * @example
 * ```ts
 * import { RespWriter } from "./resp_writer.ts";
 * const w = new RespWriter();
 * w.command(["PUBLISH", "ch", new TextEncoder().encode("hi")]);
 * new TextDecoder().decode(w.take()); // "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\nhi\r\n"
 * ```
 */
export class RespWriter {
  #buf: Uint8Array;
  #len = 0;
  /** A buffer given back by {@link RespWriter.recycle}, reused by the next take. */
  #spare: Uint8Array | null = null;

  /**
   * @param initialSize the buffer's first size in bytes (it grows as needed). Default 64 KiB.
   */
  constructor(initialSize = 64 * 1024) {
    this.#buf = new Uint8Array(initialSize);
  }

  /** Bytes written and not yet taken. */
  get length(): number {
    return this.#len;
  }

  /**
   * Frame a command: `*<n>` then each argument as a bulk string. Strings
   * are written as UTF-8.
   *
   * @param args the command name and its arguments
   */
  command(args: readonly (string | Uint8Array)[]): void {
    this.#header(0x2a, args.length);
    for (const a of args) {
      if (typeof a === "string") this.#string(a);
      else this.bulk(a);
    }
  }

  /**
   * Frame `PUBLISH channel payload` with the channel already encoded (a
   * publisher keeps its channels' bytes).
   *
   * @param channel the channel's bytes
   * @param payload the message's bytes, or its ASCII text in pieces
   *   (see {@link RespWriter.asciiBulk})
   * @throws {TypeError} for pieces that are not ASCII (nothing is written then)
   */
  publish(channel: Uint8Array, payload: Uint8Array | readonly string[]): void {
    const start = this.#len;
    this.#header(0x2a, 3);
    this.bulk(PUBLISH);
    this.bulk(channel);
    if (payload instanceof Uint8Array) this.bulk(payload);
    else {
      try {
        this.asciiBulk(payload);
      } catch (err) {
        this.#len = start;
        throw err;
      }
    }
  }

  /**
   * Append one bulk string made of ASCII text pieces, encoded straight into
   * the buffer (no bytes of their own first).
   *
   * @param pieces the content, in order
   * @throws {TypeError} for a piece that is not ASCII (nothing of the bulk
   *   string stays written then)
   */
  asciiBulk(pieces: readonly string[]): void {
    const start = this.#len;
    let n = 0;
    for (const piece of pieces) n += piece.length;
    this.#header(0x24, n);
    this.#reserve(n + 2);
    for (const piece of pieces) {
      const { read, written } = utf8.encodeInto(piece, this.#buf.subarray(this.#len));
      if (read !== piece.length || written !== piece.length) {
        this.#len = start;
        throw new TypeError("asciiBulk takes ASCII text only: encode other text to bytes first");
      }
      this.#len += written;
    }
    this.#buf[this.#len++] = CRLF_0;
    this.#buf[this.#len++] = CRLF_1;
  }

  /**
   * Append one bulk string (`$<len>\r\n<bytes>\r\n`).
   *
   * @param bytes its content
   */
  bulk(bytes: Uint8Array): void {
    this.#header(0x24, bytes.length);
    this.#reserve(bytes.length + 2);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
    this.#buf[this.#len++] = CRLF_0;
    this.#buf[this.#len++] = CRLF_1;
  }

  /**
   * The bytes written so far; the writer goes on in another buffer. The
   * view stays valid until it is passed to {@link RespWriter.recycle}.
   *
   * @returns the framed commands
   */
  take(): Uint8Array {
    const out = this.#buf.subarray(0, this.#len);
    const next = this.#spare && this.#spare.length >= this.#buf.length
      ? this.#spare
      : new Uint8Array(this.#buf.length);
    this.#spare = null;
    this.#buf = next;
    this.#len = 0;
    return out;
  }

  /**
   * Give back a buffer from {@link RespWriter.take} once it is written, to
   * be reused instead of allocating one.
   *
   * @param taken what `take` returned
   */
  recycle(taken: Uint8Array): void {
    this.#spare = new Uint8Array(taken.buffer, taken.byteOffset, taken.buffer.byteLength);
  }

  #string(s: string): void {
    const n = s.length;
    if (n > DIRECT_MAX) {
      this.bulk(utf8.encode(s));
      return;
    }
    // Encoded straight into the buffer (at most 3 bytes per UTF-16 unit) behind
    // a length prefix for ASCII text; other text gets its prefix rewritten.
    const headerAt = this.#len;
    this.#reserve(24 + n * 3 + 2);
    this.#header(0x24, n);
    let at = this.#len;
    if (n <= ASCII_LOOP_MAX && this.#ascii(s, at)) {
      this.#len = at + n;
      this.#buf[this.#len++] = CRLF_0;
      this.#buf[this.#len++] = CRLF_1;
      return;
    }
    const { written } = utf8.encodeInto(s, this.#buf.subarray(at));
    if (written !== n) {
      // More bytes than units: the prefix may take more digits, so the text moves first.
      const shift = String(written).length - String(n).length;
      if (shift > 0) this.#buf.copyWithin(at + shift, at, at + written);
      this.#len = headerAt;
      this.#header(0x24, written);
      at = this.#len;
    }
    this.#len = at + written;
    this.#buf[this.#len++] = CRLF_0;
    this.#buf[this.#len++] = CRLF_1;
  }

  /**
   * Copy ASCII text to the buffer at `at`, which has room for it; false at
   * the first other character (what was copied is then overwritten).
   */
  #ascii(s: string, at: number): boolean {
    const b = this.#buf;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) return false;
      b[at + i] = c;
    }
    return true;
  }

  #header(kind: number, n: number): void {
    this.#reserve(24);
    const b = this.#buf;
    let i = this.#len;
    b[i++] = kind;
    let digits = 1;
    for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
    i += digits;
    for (let v = n, d = i - 1; d >= i - digits; v = Math.floor(v / 10), d--) b[d] = 0x30 + v % 10;
    b[i++] = CRLF_0;
    b[i++] = CRLF_1;
    this.#len = i;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
  }
}

const PUBLISH = utf8.encode("PUBLISH");
/** Longer strings are encoded to bytes of their own first (no room reserved for 3 bytes a unit). */
const DIRECT_MAX = 64 * 1024;
/**
 * Longest string copied by a loop over its characters rather than
 * `encodeInto`: keys, tags and script arguments, without the view and the
 * result object `encodeInto` costs per call.
 */
const ASCII_LOOP_MAX = 128;
