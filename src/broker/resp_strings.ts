/**
 * A script's flat array of strings and integers (the take script's reply:
 * position, tag, envelope, ...) read from the reply's RESP bytes in one
 * UTF-8 decode ({@link respStrings}), instead of a view object and a decode
 * per element: a take of a few hundred elements made three of each per
 * message. The ioredis path's `string[]` reads the same way ({@link listStrings}).
 *
 * @module
 */

import { utf8Text } from "../protocol/utf8_text.ts";
import { RedisReplyError, type RespValue } from "./resp_reader.ts";

/**
 * The elements of a flat array reply, by index.
 *
 * @example
 * ```ts
 * import { listStrings } from "./resp_strings.ts";
 * const flat = listStrings(["1", "tag", "{}"]);
 * flat.int(0); // 1
 * flat.equals(1, "tag"); // true
 * ```
 */
export interface FlatStrings {
  /** How many elements. */
  readonly length: number;
  /**
   * Element `k` as text (an integer as its decimal text). It may share the
   * reply's memory: for use at once (parse it, compare it), not to keep.
   */
  text(k: number): string;
  /** Element `k` as text of its own, which keeps nothing else alive: to keep. */
  own(k: number): string;
  /** Element `k` as a number (an integer, or a string of its decimal text). */
  int(k: number): number;
  /** Whether element `k` is the text `s`. */
  equals(k: number, s: string): boolean;
}

/**
 * Bytes Redis sent (a bulk string, a published message or its channel) as
 * text, as ioredis decodes them (Buffer's `toString`) and Python's kombu
 * (`bytes.decode`): invalid bytes become U+FFFD and a leading BOM (U+FEFF)
 * is kept, so a JSON text that starts with one is refused by its decoder
 * here as there. (`TextDecoder`'s default drops the BOM.)
 *
 * @example
 * ```ts
 * import { bulkText } from "./resp_strings.ts";
 * bulkText(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])); // "\ufeffa"
 * ```
 *
 * @param bytes the bytes
 * @returns their text
 */
export function bulkText(bytes: Uint8Array): string {
  return utf8Text(bytes);
}

/**
 * Strings of at most this many UTF-16 units that V8 copies when sliced
 * (longer slices point into their parent: `SlicedString::kMinLength` 13).
 */
const COPIED_SLICE = 12;

/**
 * The elements of an array reply as `RespConnection.command` (with `whole`)
 * hands it out (its RESP bytes), read while the bytes are valid: one
 * decode of the whole reply, whose elements are slices of that text when
 * each byte is one UTF-16 unit (ASCII; an invalid byte is one U+FFFD too),
 * else each element decoded on its own, as ioredis decodes it (invalid
 * bytes become U+FFFD, a leading BOM is kept).
 *
 * @example
 * ```ts
 * import { respStrings } from "./resp_strings.ts";
 * const bytes = new TextEncoder().encode("*2\r\n:-3\r\n$2\r\nok\r\n");
 * const flat = respStrings(bytes);
 * [flat.int(0), flat.text(1)]; // [-3, "ok"]
 * ```
 *
 * @param reply the array reply's bytes (any other value is refused)
 * @returns its elements
 * @throws {TypeError} when the reply is not an array of bulk strings and integers
 */
export function respStrings(reply: RespValue): FlatStrings {
  if (!(reply instanceof Uint8Array)) {
    throw new TypeError(`expected an array reply, got ${describe(reply)}`);
  }
  const b = reply;
  let at = 1;
  const line = (): number => {
    let n = 0;
    const negative = b[at] === 0x2d;
    if (negative) at++;
    while (at < b.length && b[at] !== 0x0d) n = n * 10 + b[at++] - 0x30;
    at += 2;
    return negative ? -n : n;
  };
  const n = line();
  if (n < 0) throw new TypeError("expected an array reply, got a nil array");
  // Per element: its start and end in the bytes, or -1 and its integer.
  const spans = new Array<number>(2 * n);
  for (let k = 0; k < n; k++) {
    const kind = b[at++];
    if (kind === 0x3a) {
      spans[2 * k] = -1;
      spans[2 * k + 1] = line();
    } else if (kind === 0x24) {
      const len = line();
      if (len < 0) throw new TypeError("expected strings in the array reply, got nil");
      spans[2 * k] = at;
      spans[2 * k + 1] = at + len;
      at += len + 2;
    } else {
      throw new TypeError(`expected strings in the array reply, got ${kindOf(kind)}`);
    }
  }
  const text = bulkText(b);
  if (text.length === b.length) return new SlicedStrings(text, spans);
  const list = new Array<string>(n);
  for (let k = 0; k < n; k++) {
    const from = spans[2 * k];
    list[k] = from < 0 ? String(spans[2 * k + 1]) : bulkText(b.subarray(from, spans[2 * k + 1]));
  }
  return listStrings(list);
}

/** Elements as slices of the reply's text (each byte one UTF-16 unit). */
class SlicedStrings implements FlatStrings {
  readonly #text: string;
  readonly #spans: number[];

  constructor(text: string, spans: number[]) {
    this.#text = text;
    this.#spans = spans;
  }

  get length(): number {
    return this.#spans.length / 2;
  }

  text(k: number): string {
    const from = this.#spans[2 * k];
    const to = this.#spans[2 * k + 1];
    return from < 0 ? String(to) : this.#text.slice(from, to);
  }

  own(k: number): string {
    const from = this.#spans[2 * k];
    const to = this.#spans[2 * k + 1];
    if (from < 0) return String(to);
    // Joined from slices short enough to be copies: a slice of the reply's text would keep it.
    let out = "";
    for (let at = from; at < to; at += COPIED_SLICE) {
      out += this.#text.slice(at, Math.min(at + COPIED_SLICE, to));
    }
    return out;
  }

  int(k: number): number {
    const from = this.#spans[2 * k];
    return from < 0 ? this.#spans[2 * k + 1] : Number(this.text(k));
  }

  equals(k: number, s: string): boolean {
    const from = this.#spans[2 * k];
    const to = this.#spans[2 * k + 1];
    if (from < 0) return s === String(to);
    if (to - from !== s.length) return false;
    const t = this.#text;
    for (let i = 0; i < s.length; i++) if (t.charCodeAt(from + i) !== s.charCodeAt(i)) return false;
    return true;
  }
}

/**
 * The elements of a reply already decoded into strings (ioredis).
 *
 * @example
 * ```ts
 * import { listStrings } from "./resp_strings.ts";
 * listStrings(["7"]).int(0); // 7
 * ```
 *
 * @param list the strings
 * @returns them as {@link FlatStrings}
 */
export function listStrings(list: readonly string[]): FlatStrings {
  return {
    length: list.length,
    text: (k) => list[k],
    own: (k) => list[k],
    int: (k) => Number(list[k]),
    equals: (k, s) => list[k] === s,
  };
}

function kindOf(byte: number): string {
  if (byte === 0x2a) return "an array";
  if (byte === 0x2d) return "an error";
  return `a reply of type ${String.fromCharCode(byte)}`;
}

function describe(v: RespValue): string {
  if (v === null) return "nil";
  if (Array.isArray(v)) return "an array";
  if (v instanceof RedisReplyError) return `an error (${v.message})`;
  return typeof v;
}
