/**
 * JSON exactly as Python's `json` module (and so kombu) writes and reads it.
 *
 * Encoding follows kombu 5.2: `", "` and `": "` separators, `ensure_ascii`
 * escapes, `NaN` / `Infinity` tokens, big integers as digits, `Date` as an ISO
 * string with a `Z` suffix. Decoding accepts what any kombu version sends:
 * `NaN` / `Infinity`, integers beyond 2^53 (returned as `bigint`), and the
 * `{"__type__": ..., "__value__": ...}` wrappers of kombu 5.3+.
 *
 * @module
 */

import { refusal, Refused } from "./encodable.ts";
import { ProtocolError } from "./errors.ts";
import { MAX_NESTING_DEPTH } from "./limits.ts";
import { parsePyDate, pyIsoFormat } from "./time.ts";

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
 * ```ts ignore
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
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    throw new Refused(
      "Raw bytes cannot be sent as JSON (Celery 5.2 cannot decode them either): " +
        'base64-encode them into a string, or use serializer "msgpack"',
    );
  }
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
 * text is the same as `pyJsonDumps(records)`.
 *
 * @example
 * ```ts
 * import { pyJsonDumps, pyJsonDumpsRecords } from "@celeriac/celeriac/protocol";
 * const batch = [{ type: "task-started", uuid: "t1", clock: 3 }, { type: "x", ok: true }];
 * pyJsonDumpsRecords(batch) === pyJsonDumps(batch); // true
 * pyJsonDumpsRecords(batch); // '[{"type": "task-started", "uuid": "t1", "clock": 3}, {"type": "x", "ok": true}]'
 * ```
 *
 * @param records the records
 * @returns ASCII-only JSON text
 * @throws {EncodeError} as {@link pyJsonDumps}, for a value JSON cannot carry
 */
export function pyJsonDumpsRecords(records: readonly Record<string, unknown>[]): string {
  let text = "[";
  for (let i = 0; i < records.length; i++) {
    if (i > 0) text += ", ";
    text += encodeRecord(records[i]);
  }
  return text + "]";
}

function encodeRecord(record: Record<string, unknown>): string {
  if (
    record === null || typeof record !== "object" ||
    Object.getPrototypeOf(record) !== Object.prototype || typeof record.toJSON === "function"
  ) {
    return pyJsonDumps(record);
  }
  return "{" + pyJsonMembers(record) + "}";
}

/** The members of a flat plain record as {@link pyJsonDumps} writes them between the braces. */
function pyJsonMembers(record: Record<string, unknown>): string {
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
        encoded = encodeNumber(v);
        break;
      case "boolean":
        encoded = v ? "true" : "false";
        break;
      case "undefined":
        continue;
      default:
        encoded = v === null ? "null" : pyJsonDumps(v);
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
 * ```ts ignore
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

function uuidFromHex(hex: string): string {
  const h = hex.replaceAll("-", "").toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Turn a kombu 5.3+ `{"__type__", "__value__"}` wrapper into a JavaScript
 * value: `datetime` → `Date` (naive times are read as UTC, as Celery does),
 * `bytes` / `base64` → `Uint8Array`, `uuid` → canonical string, `date`,
 * `time` and `decimal` → their text. Unknown types are left as they are.
 */
function unwrapTyped(obj: Record<string, unknown>): unknown {
  const type = obj.__type__;
  const v = obj.__value__;
  switch (type) {
    case "datetime":
      return typeof v === "string" ? parsePyDate(v) : obj;
    case "date":
    case "time":
    case "decimal":
      return typeof v === "string" ? v : obj;
    case "uuid": {
      if (typeof v === "string") return uuidFromHex(v);
      const hex = (v as { hex?: unknown } | null)?.hex;
      return typeof hex === "string" ? uuidFromHex(hex) : obj;
    }
    case "bytes":
      return typeof v === "string" ? new TextEncoder().encode(v) : obj;
    case "base64":
      return typeof v === "string" ? Uint8Array.fromBase64(v) : obj;
    default:
      return obj;
  }
}

function isTypedWrapper(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  let n = 0;
  for (const k in v) {
    if (k !== "__type__" && k !== "__value__") return false;
    n++;
  }
  return n === 2;
}

function exactNumber(value: number, source: string): number | bigint {
  if (Number.isSafeInteger(value) || !/^-?\d+$/.test(source)) return value;
  return BigInt(source);
}

function reviver(this: unknown, _key: string, value: unknown, ctx?: { source?: string }): unknown {
  if (typeof value === "number" && ctx?.source !== undefined) return exactNumber(value, ctx.source);
  if (isTypedWrapper(value)) return unwrapTyped(value);
  return value;
}

/**
 * Decode JSON as Python writes it.
 *
 * Accepts `NaN`, `Infinity` and `-Infinity`; integers that do not fit a
 * double exactly come back as `bigint`; kombu 5.3+ typed wrappers are
 * unwrapped (see the module doc).
 *
 * @example
 * ```ts
 * import { pyJsonLoads } from "@celeriac/celeriac/protocol";
 * pyJsonLoads('{"n": 18446744073709551616, "x": NaN}'); // { n: 18446744073709551616n, x: NaN }
 * ```
 *
 * @param text JSON text
 * @returns the decoded value
 * @throws {ProtocolError} when the text is not JSON, or (for the Python-only
 *   tokens `NaN` / `Infinity`) nests deeper than `MAX_NESTING_DEPTH`
 */
export function pyJsonLoads(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return new TolerantParser(text).parseDocument();
  }
  if (!needsReviver(value)) return value;
  try {
    return JSON.parse(text, reviver);
  } catch (err) {
    if (err instanceof RangeError) {
      // JSON.parse itself is iterative, but its reviver walks the result recursively.
      throw new ProtocolError(`JSON nested too deep to decode: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/**
 * Whether a plain `JSON.parse` result needs the reviver: it holds a number
 * beyond 2^53 - 1 (an integer token that may have lost digits; floats that
 * large are integers too, and the reviver keeps them as they are) or an
 * object with a `__type__` key (a kombu 5.3+ wrapper). Walking the result
 * costs a fraction of scanning the text: an event batch or an envelope is
 * mostly text inside strings.
 */
function needsReviver(root: unknown): boolean {
  if (typeof root !== "object" || root === null) {
    return typeof root === "number" && Math.abs(root) > Number.MAX_SAFE_INTEGER;
  }
  // A JSON.parse result has no getters: nothing runs during the walk, so one stack serves
  // every call (kept between calls: no allocation per decoded message).
  const stack = REVIVER_STACK;
  let top = 0;
  stack[0] = root;
  let found = false;
  while (top >= 0 && !found) {
    const o = stack[top];
    stack[top--] = undefined;
    if (Array.isArray(o)) {
      for (let i = 0; i < o.length; i++) {
        const v: unknown = o[i];
        if (typeof v === "number") {
          if (Math.abs(v) > Number.MAX_SAFE_INTEGER) found = true;
        } else if (typeof v === "object" && v !== null) stack[++top] = v;
      }
    } else {
      for (const k in o as object) {
        if (k === "__type__") found = true;
        const v = (o as Record<string, unknown>)[k];
        if (typeof v === "number") {
          if (Math.abs(v) > Number.MAX_SAFE_INTEGER) found = true;
        } else if (typeof v === "object" && v !== null) stack[++top] = v;
      }
    }
  }
  for (; top >= 0; top--) stack[top] = undefined;
  if (stack.length > KEPT_STACK) stack.length = 0;
  return found;
}

/** {@link needsReviver}'s stack, kept between calls. */
const REVIVER_STACK: unknown[] = [];
/** Longest stack kept after a walk (a wide value's walk does not keep its size). */
const KEPT_STACK = 1024;

/** A small recursive-descent parser for the JSON superset Python emits. */
class TolerantParser {
  #pos = 0;
  #depth = 0;
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  parseDocument(): unknown {
    const v = this.#value();
    this.#ws();
    if (this.#pos !== this.#text.length) this.#fail("unexpected trailing data");
    return v;
  }

  #fail(what: string): never {
    throw new ProtocolError(`Invalid JSON at offset ${this.#pos}: ${what}`);
  }

  #ws(): void {
    const t = this.#text;
    while (this.#pos < t.length) {
      const c = t.charCodeAt(this.#pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.#pos++;
    }
  }

  #literal(word: string, value: unknown): unknown {
    if (!this.#text.startsWith(word, this.#pos)) this.#fail(`expected ${word}`);
    this.#pos += word.length;
    return value;
  }

  #value(): unknown {
    this.#ws();
    const c = this.#text[this.#pos];
    switch (c) {
      case "{":
        return this.#object();
      case "[":
        return this.#array();
      case '"':
        return this.#string();
      case "t":
        return this.#literal("true", true);
      case "f":
        return this.#literal("false", false);
      case "n":
        return this.#literal("null", null);
      case "N":
        return this.#literal("NaN", NaN);
      case "I":
        return this.#literal("Infinity", Infinity);
      case undefined:
        return this.#fail("unexpected end of input");
      default:
        if (c === "-" && this.#text.startsWith("-Infinity", this.#pos)) {
          return this.#literal("-Infinity", -Infinity);
        }
        return this.#number();
    }
  }

  #number(): number | bigint {
    const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    m.lastIndex = this.#pos;
    const found = m.exec(this.#text);
    if (!found) this.#fail("expected a value");
    this.#pos += found[0].length;
    return exactNumber(Number(found[0]), found[0]);
  }

  #string(): string {
    const m = /"(?:[^"\\]|\\.)*"/y;
    m.lastIndex = this.#pos;
    const found = m.exec(this.#text);
    if (!found) this.#fail("unterminated string");
    let value: string;
    try {
      value = JSON.parse(found[0]);
    } catch {
      this.#fail("malformed string (bad escape or raw control character)");
    }
    this.#pos += found[0].length;
    return value;
  }

  #enter(): void {
    if (++this.#depth > MAX_NESTING_DEPTH) {
      this.#fail(`nested deeper than ${MAX_NESTING_DEPTH} levels`);
    }
  }

  #array(): unknown[] {
    this.#pos++;
    this.#enter();
    const out: unknown[] = [];
    this.#ws();
    if (this.#text[this.#pos] === "]") {
      this.#pos++;
      this.#depth--;
      return out;
    }
    for (;;) {
      out.push(this.#value());
      this.#ws();
      const c = this.#text[this.#pos++];
      if (c === "]") {
        this.#depth--;
        return out;
      }
      if (c !== ",") this.#fail("expected , or ]");
    }
  }

  #object(): unknown {
    this.#pos++;
    this.#enter();
    const out: Record<string, unknown> = {};
    this.#ws();
    if (this.#text[this.#pos] === "}") {
      this.#pos++;
      this.#depth--;
      return out;
    }
    for (;;) {
      this.#ws();
      if (this.#text[this.#pos] !== '"') this.#fail("expected a key");
      const key = this.#string();
      this.#ws();
      if (this.#text[this.#pos++] !== ":") this.#fail("expected :");
      out[key] = this.#value();
      this.#ws();
      const c = this.#text[this.#pos++];
      if (c === "}") {
        this.#depth--;
        return isTypedWrapper(out) ? unwrapTyped(out) : out;
      }
      if (c !== ",") this.#fail("expected , or }");
    }
  }
}
