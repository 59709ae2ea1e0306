/**
 * JSON exactly as Python's `json` module (and so kombu) writes and reads it.
 *
 * Encoding follows kombu 5.2: `", "` and `": "` separators, `ensure_ascii`
 * escapes, `NaN` / `Infinity` tokens, big integers as digits, `Date` as an ISO
 * string with a `Z` suffix. Decoding accepts what any kombu version sends:
 * `NaN` / `Infinity`, integers beyond 2^53 (returned as `bigint`), and the
 * `{"__type__": ..., "__value__": ...}` wrappers of kombu 5.3+ (decoding is
 * in json_decode.ts; {@link pyJsonLoads} is exported here too).
 *
 * @module
 */

import { refusal, Refused } from "./encodable.ts";
import { pyIsoFormat } from "./time.ts";

export { pyJsonLoads } from "./json_decode.ts";

const SAFE_STRING = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;
// Python's ensure_ascii escapes everything outside " "-"~", so DEL (0x7f) too.
const NON_ASCII = /[\u007f-\uffff]/g;

function escapeNonAscii(ch: string): string {
  return "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0");
}

/**
 * Whether Python's `json.dumps` writes `s` as is between its quotes:
 * printable ASCII without `"` or `\\`.
 *
 * @example
 * ```ts
 * isVerbatimJsonString("bench.noop"); // true
 * isVerbatimJsonString('say "hi"'); // false
 * ```
 *
 * @param s the string
 * @returns true when nothing in it is escaped
 */
export function isVerbatimJsonString(s: string): boolean {
  return SAFE_STRING.test(s);
}

function encodeString(s: string): string {
  if (SAFE_STRING.test(s)) return '"' + s + '"';
  return JSON.stringify(s).replace(NON_ASCII, escapeNonAscii);
}

function encodeNumber(n: number): string {
  if (Number.isSafeInteger(n) && (n !== 0 || 1 / n > 0)) return String(n);
  // A whole number past 2^53 is a double, not an exact integer (those arrive as bigints): as a
  // float Python reads the same number; as digits ("1152921504606847000" for 2 ** 60) an int
  // that is not it.
  if (Number.isInteger(n) && n !== 0) return pyJsonFloat(n);
  if (Number.isFinite(n)) {
    if (Object.is(n, -0)) return "-0.0";
    // Python's float repr uses exponent notation below 1e-4 (JS: below 1e-6)
    // and writes at least two exponent digits ("1e-05", "1e-07").
    const abs = Math.abs(n);
    const text = abs !== 0 && abs < 1e-4 ? n.toExponential() : String(n);
    // JS writes the exponent's sign always ("1e-7", "1e+21"): one digit after it gets a 0.
    const e = text.indexOf("e");
    return e < 0 || text.length - e > 3 ? text : text.slice(0, e + 2) + "0" + text.slice(e + 2);
  }
  return Number.isNaN(n) ? "NaN" : n > 0 ? "Infinity" : "-Infinity";
}

/**
 * A number as Python's `json.dumps` writes a float: as {@link pyJsonScalar}
 * writes it, but a whole number gets `.0` (`1700000000.0`, `0.0`), or an
 * exponent from 1e16 up (`1e+16`), as Python's `repr(float)`.
 *
 * @example
 * ```ts
 * pyJsonFloat(2); // "2.0"
 * pyJsonFloat(0.25); // "0.25"
 * pyJsonFloat(1e16); // "1e+16"
 * ```
 *
 * @param n the number
 * @returns its JSON text as a Python float
 */
export function pyJsonFloat(n: number): string {
  if (!Number.isInteger(n) || Object.is(n, -0)) return encodeNumber(n);
  return Math.abs(n) < 1e16 ? n + ".0" : n.toExponential();
}

/**
 * A number Python holds as a float, where a whole one must stay a float on
 * the wire: {@link pyJsonDumps} writes it with `.0` when whole
 * (`1795490308.0`), and AMQP headers carry it as a double (`d`), as kombu
 * and py-amqp write Python's floats. Anything else reads it as its number
 * (`toJSON`, `valueOf`).
 *
 * @example
 * ```ts
 * import { pyJsonDumps } from "@celeriac/celeriac/protocol";
 * pyJsonDumps({ expires: new PyFloat(1795490308) }); // '{"expires": 1795490308.0}'
 * pyJsonDumps({ expires: 1795490308 }); // '{"expires": 1795490308}'
 * ```
 */
export class PyFloat {
  /** The number. */
  readonly value: number;

  /** @param value the number */
  constructor(value: number) {
    this.value = value;
  }

  /**
   * The number, for `JSON.stringify`.
   *
   * @returns the number
   */
  toJSON(): number {
    return this.value;
  }

  /**
   * The number, for arithmetic and comparisons.
   *
   * @returns the number
   */
  valueOf(): number {
    return this.value;
  }
}

/**
 * {@link pyJsonDumps} of a value whose numbers Python holds as floats: a
 * number, or a list of numbers (each element), is written by
 * {@link pyJsonFloat}; anything else as {@link pyJsonDumps} writes it.
 *
 * @example
 * ```ts
 * pyJsonFloats([0, 0.5, 1]); // "[0.0, 0.5, 1.0]"
 * pyJsonFloats(null); // "null"
 * ```
 *
 * @param value the value
 * @returns its JSON text
 * @throws {EncodeError} as {@link pyJsonDumps}
 */
export function pyJsonFloats(value: unknown): string {
  if (typeof value === "number") return pyJsonFloat(value);
  if (Array.isArray(value) && value.every((x) => typeof x === "number")) {
    return "[" + value.map(pyJsonFloat).join(", ") + "]";
  }
  return pyJsonDumps(value);
}

/**
 * Why raw bytes are refused in a JSON message (a result says otherwise: it
 * has no msgpack to turn to).
 *
 * @example
 * ```ts
 * import { EncodeError } from "@celeriac/celeriac";
 * import { pyJsonDumps } from "@celeriac/celeriac/protocol";
 * try {
 *   pyJsonDumps({ data: new Uint8Array([1]) });
 * } catch (err) {
 *   if (err instanceof EncodeError && err.reason === BYTES_REFUSAL) console.log("bytes");
 * }
 * ```
 */
export const BYTES_REFUSAL =
  "Raw bytes cannot be sent as JSON (Celery 5.2 cannot decode them either): " +
  'base64-encode them into a string, or use serializer "msgpack"';

function encodeValue(value: unknown, seen: Set<object>, inArray: boolean): string | undefined {
  switch (typeof value) {
    case "string":
      return encodeString(value);
    case "number":
      return encodeNumber(value);
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return value.toString();
    case "undefined":
    case "function":
    case "symbol": {
      const why = refusal(value, inArray);
      if (why) throw new Refused(why);
      return undefined;
    }
  }
  if (value === null) return "null";
  const obj = value as Record<string, unknown>;
  if (value instanceof Date) {
    if (!Number.isFinite(value.getTime())) throw new Refused("Invalid Date cannot be encoded");
    return encodeString(pyIsoFormat(value, "Z"));
  }
  if (value instanceof PyFloat) return pyJsonFloat(value.value);
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) throw new Refused(BYTES_REFUSAL);
  if (typeof obj.toJSON === "function") {
    return encodeValue((obj.toJSON as () => unknown)(), seen, inArray);
  }
  const why = refusal(value, inArray);
  if (why) throw new Refused(why);
  if (seen.has(obj)) throw new Refused("Cannot encode a value that contains itself (a cycle)");
  seen.add(obj);
  let key: string | number = 0;
  try {
    if (Array.isArray(value)) {
      const parts = new Array<string>(value.length);
      for (let i = 0; i < value.length; i++) {
        key = i;
        parts[i] = encodeValue(value[i], seen, true)!;
      }
      return "[" + parts.join(", ") + "]";
    }
    const parts: string[] = [];
    for (const k in obj) {
      if (!Object.hasOwn(obj, k)) continue;
      key = k;
      const encoded = encodeValue(obj[k], seen, false);
      if (encoded !== undefined) parts.push(encodeString(k) + ": " + encoded);
    }
    return "{" + parts.join(", ") + "}";
  } catch (err) {
    throw err instanceof Refused ? err.under(key) : err;
  } finally {
    seen.delete(obj);
  }
}

/**
 * Encode a value as Python's `json.dumps` would (kombu 5.2 flavour).
 *
 * @example
 * ```ts
 * import { pyJsonDumps } from "@celeriac/celeriac/protocol";
 * pyJsonDumps([[2, 3], {}, { callbacks: null }]); // '[[2, 3], {}, {"callbacks": null}]'
 * pyJsonDumps({ big: 2n ** 64n, x: NaN });      // '{"big": 18446744073709551616, "x": NaN}'
 * ```
 *
 * @param value any JSON-like value; `bigint`, `Date`, `NaN` and `Infinity` are supported
 * @returns ASCII-only JSON text
 * @throws {EncodeError} for what JSON cannot carry: cycles, raw bytes, `Map`, `Set`,
 *   functions, symbols, `undefined` in arrays, `Error` objects; its `path` says where
 */
export function pyJsonDumps(value: unknown): string {
  try {
    return encodeValue(value, new Set(), false) ?? "null";
  } catch (err) {
    throw err instanceof Refused ? err.toError() : err;
  }
}

/**
 * {@link pyJsonDumps} of a list of flat records — what a batch of Celery
 * events is — without the general encoder's per-object checks: strings,
 * numbers, booleans and `null` are written directly, other values (and
 * records that are not plain objects) go through {@link pyJsonDumps}. The
 * text is the same as `pyJsonDumps(records)`, except for the numbers under
 * the keys in `floats`: those are Python floats, whole ones written with
 * `.0` (`"timestamp": 1700000000.0`), in a list too (`[0.0, 0.5, 1.0]`).
 *
 * @example
 * ```ts
 * import { pyJsonDumps, pyJsonDumpsRecords } from "@celeriac/celeriac/protocol";
 * const batch = [{ type: "task-started", uuid: "t1", clock: 3 }, { type: "x", ok: true }];
 * pyJsonDumpsRecords(batch) === pyJsonDumps(batch); // true
 * pyJsonDumpsRecords(batch); // '[{"type": "task-started", "uuid": "t1", "clock": 3}, {"type": "x", "ok": true}]'
 * pyJsonDumpsRecords([{ clock: 3, timestamp: 1700000000 }], new Set(["timestamp"]));
 * // '[{"clock": 3, "timestamp": 1700000000.0}]'
 * ```
 *
 * @param records the records
 * @param floats the keys whose numbers are floats; default none
 * @returns ASCII-only JSON text
 * @throws {EncodeError} as {@link pyJsonDumps}, for a value JSON cannot carry
 */
export function pyJsonDumpsRecords(
  records: readonly Record<string, unknown>[],
  floats?: ReadonlySet<string>,
): string {
  let text = "[";
  for (let i = 0; i < records.length; i++) {
    if (i > 0) text += ", ";
    text += pyJsonDumpsRecord(records[i], floats);
  }
  return text + "]";
}

/**
 * One record as {@link pyJsonDumpsRecords} writes each of its list.
 *
 * @example
 * ```ts
 * pyJsonDumpsRecord({ freq: 2, active: 0 }, new Set(["freq"])); // '{"freq": 2.0, "active": 0}'
 * ```
 *
 * @param record the record
 * @param floats the keys whose numbers are floats; default none
 * @returns ASCII-only JSON text
 * @throws {EncodeError} as {@link pyJsonDumps}, for a value JSON cannot carry
 */
export function pyJsonDumpsRecord(
  record: Record<string, unknown>,
  floats?: ReadonlySet<string>,
): string {
  if (
    record === null || typeof record !== "object" ||
    Object.getPrototypeOf(record) !== Object.prototype || typeof record.toJSON === "function"
  ) {
    return pyJsonDumps(record);
  }
  return "{" + pyJsonMembers(record, floats) + "}";
}

/** The members of a flat plain record as {@link pyJsonDumpsRecords} writes them between the braces. */
function pyJsonMembers(record: Record<string, unknown>, floats?: ReadonlySet<string>): string {
  let text = "";
  let first = true;
  for (const k in record) {
    if (!Object.hasOwn(record, k)) continue;
    const v = record[k];
    let encoded: string;
    switch (typeof v) {
      case "string":
        encoded = encodeString(v);
        break;
      case "number":
        encoded = Number.isInteger(v) && floats?.has(k) ? pyJsonFloat(v) : encodeNumber(v);
        break;
      case "boolean":
        encoded = v ? "true" : "false";
        break;
      case "undefined":
        continue;
      default:
        encoded = v === null ? "null" : floats?.has(k) ? pyJsonFloats(v) : pyJsonDumps(v);
    }
    text += (first ? "" : ", ") + encodeString(k) + ": " + encoded;
    first = false;
  }
  return text;
}

/**
 * A string or number as {@link pyJsonDumps} writes it, without its checks
 * for other values.
 *
 * @example
 * ```ts
 * pyJsonScalar("café"); // '"caf\\u00e9"'
 * pyJsonScalar(1e-5); // "1e-05"
 * ```
 *
 * @param value the string or number
 * @returns its JSON text
 */
export function pyJsonScalar(value: string | number): string {
  return typeof value === "string" ? encodeString(value) : encodeNumber(value);
}

/**
 * How many arrays and objects deep {@link jsonText} writes a value: about
 * what Python's `json.dumps` writes before its recursion limit.
 */
export const JSON_TEXT_MAX_DEPTH = 1000;

/** The depth tried when {@link JSON_TEXT_MAX_DEPTH} ran out of stack. */
const JSON_TEXT_SHORT_DEPTH = 100;

/** What stands for an array or object nested deeper than `depth` levels. */
function deepMarker(depth: number): string {
  return `<nested deeper than ${depth} levels: not shown>`;
}

/** `JSON.stringify` with bigints as digits and containers past `maxDepth` as a marker. */
function boundedStringify(value: unknown, maxDepth: number, space?: number): string {
  // Depth of each array or object met, so a value's depth is its holder's + 1.
  const depths = new WeakMap<object, number>();
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, key: string, v: unknown) {
      if (typeof v === "bigint") return rawJSON(v.toString());
      const raw = this[key];
      if (raw instanceof PyFloat && Number.isFinite(raw.value)) {
        return rawJSON(pyJsonFloat(raw.value));
      }
      if (v === null || typeof v !== "object") return v;
      const depth = (depths.get(this) ?? 0) + 1;
      if (depth > maxDepth) return deepMarker(maxDepth);
      depths.set(v, depth);
      return v;
    },
    space,
  );
}

/**
 * `JSON.stringify` that writes an integer beyond 2^53 (a `bigint`, as
 * {@link pyJsonLoads} decodes one) with all its digits, where
 * `JSON.stringify` throws for it: for text shown or served as plain JSON
 * (the command line's replies, the dashboard's API), not Python's layout.
 * A {@link PyFloat} is written as Python writes it (`2.0`). It never throws
 * for depth: an array or object nested deeper than
 * {@link JSON_TEXT_MAX_DEPTH} levels (100 when the stack runs out first)
 * is written as the string `"<nested deeper than 1000 levels: not shown>"`,
 * so a hostile or buggy producer's 5,000-deep result still prints as JSON.
 *
 * @example
 * ```ts
 * import { jsonText } from "./json.ts";
 * jsonText({ "celery@h": 2n ** 64n }); // '{"celery@h":18446744073709551616}'
 * let deep: unknown = [];
 * for (let i = 0; i < 5000; i++) deep = [deep];
 * jsonText(deep).includes('["<nested deeper than 1000 levels: not shown>"]]]'); // true
 * ```
 *
 * @param value any JSON-like value
 * @param space indentation, as `JSON.stringify`'s
 * @returns the text
 */
export function jsonText(value: unknown, space?: number): string {
  try {
    return boundedStringify(value, JSON_TEXT_MAX_DEPTH, space);
  } catch (err) {
    // Called with little stack left: a shallower text needs less.
    if (!(err instanceof RangeError)) throw err;
    return boundedStringify(value, JSON_TEXT_SHORT_DEPTH, space);
  }
}

/** `JSON.rawJSON` (V8 has it; TypeScript's library does not yet). */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
