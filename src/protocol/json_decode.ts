/**
 * Decoding JSON as Python's `json` module writes it (and so any kombu
 * version sends it): `NaN` / `Infinity` tokens, integers beyond 2^53 as
 * `bigint`, and kombu 5.3+ `{"__type__": ..., "__value__": ...}` wrappers
 * unwrapped. Plain JSON takes `JSON.parse`'s fast path; a reviver runs only
 * when the result needs it, and a tolerant parser only for Python's tokens.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import { checkShape, MAX_NESTING_DEPTH } from "./limits.ts";
import { parsePyDate } from "./time.ts";

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
 * @throws {ProtocolError} when the text is not JSON, nests deeper than
 *   `MAX_NESTING_DEPTH` with the Python-only tokens `NaN` / `Infinity`, or
 *   (holding long integers or typed wrappers) nests too deep for the stack
 */
export function pyJsonLoads(text: string): unknown {
  return pyJsonLoadsShaped(text, undefined, "JSON value");
}

/**
 * What {@link pyJsonLoadsShaped} measured of the value it decoded, as
 * `checkShape` (limits.ts) measures a value: a caller that finds it within
 * its limits need not walk the value again.
 *
 * @example
 * ```ts
 * import type { JsonShape } from "./json_decode.ts";
 * const shape: JsonShape = { depth: -1, size: 0 };
 * ```
 */
export interface JsonShape {
  /**
   * Deepest nesting of arrays and objects, the value itself being 1 when it
   * is one (0 for a scalar); -1 when not measured (a value decoded with the
   * reviver, or by the parser of Python's tokens).
   */
  depth: number;
  /** `checkShape`'s size estimate: 8 per element and 8 plus its length per key, and each string's length. */
  size: number;
}

/**
 * {@link pyJsonLoads}, measuring the plain `JSON.parse` result's depth and
 * size on the walk that looks for what needs the reviver (one walk instead
 * of that and `checkShape`'s): the decoder of envelopes and bodies checks
 * the limits from `shape` and walks only a value it could not measure.
 *
 * @example
 * ```ts
 * import { type JsonShape, pyJsonLoadsShaped } from "./json_decode.ts";
 * const shape: JsonShape = { depth: -1, size: 0 };
 * pyJsonLoadsShaped('{"a": [1, "xy"]}', shape);
 * shape; // { depth: 2, size: 27 }
 * ```
 *
 * @param text JSON text
 * @param shape filled with the value's depth and size (depth -1: not measured); none: not measured
 * @param what what the text is, named when it nests past `MAX_NESTING_DEPTH` (default "body")
 * @param taskId the task id, when known, for that error
 * @returns the decoded value
 * @throws {ProtocolError} as {@link pyJsonLoads}
 */
export function pyJsonLoadsShaped(
  text: string,
  shape: JsonShape | undefined,
  what = "body",
  taskId?: string,
): unknown {
  if (shape !== undefined) shape.depth = -1;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return new TolerantParser(text).parseDocument();
  }
  if (!needsReviver(value, shape)) return value;
  if (shape !== undefined) {
    shape.depth = -1;
    // A shaped text (a task body) is refused past the limit anyway: refused before the
    // reviver's recursive walk, in the words of every other depth refusal.
    checkShape(value, what, {}, taskId);
    return JSON.parse(text, reviver);
  }
  // Anything else (a result, a reply, an event) is read as deep as Python's json.loads reads
  // it: JSON.parse is iterative, and only a value deep enough to exhaust the stack in the
  // reviver's recursion is refused.
  try {
    return JSON.parse(text, reviver);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new ProtocolError(
      `Message ${what} nests too deep to decode (${err.message}): refused (flatten the data, ` +
        `or send it as a string)`,
      { taskId, cause: err },
    );
  }
}

/**
 * Whether a plain `JSON.parse` result needs the reviver: it holds a number
 * beyond 2^53 - 1 (an integer token that may have lost digits; floats that
 * large are integers too, and the reviver keeps them as they are) or an
 * object with a `__type__` key (a kombu 5.3+ wrapper). Walking the result
 * costs a fraction of scanning the text: an event batch or an envelope is
 * mostly text inside strings. The same walk measures the value's depth and
 * size into `shape` (when it walks it whole: when nothing needs the reviver).
 */
function needsReviver(root: unknown, shape: JsonShape | undefined): boolean {
  if (typeof root !== "object" || root === null) {
    if (shape !== undefined) {
      shape.depth = 0;
      shape.size = typeof root === "string" ? root.length : 0;
    }
    return typeof root === "number" && Math.abs(root) > Number.MAX_SAFE_INTEGER;
  }
  // A JSON.parse result has no getters: nothing runs during the walk, so one stack serves
  // every call (kept between calls: no allocation per decoded message).
  const stack = REVIVER_STACK;
  const depths = DEPTH_STACK;
  let top = 0;
  stack[0] = root;
  depths[0] = 1;
  let found = false;
  let deepest = 1;
  let size = 0;
  while (top >= 0 && !found) {
    const o = stack[top];
    const depth = depths[top];
    stack[top--] = undefined;
    if (depth > deepest) deepest = depth;
    if (Array.isArray(o)) {
      size += 8 * o.length;
      for (let i = 0; i < o.length; i++) {
        const v: unknown = o[i];
        if (typeof v === "string") size += v.length;
        else if (typeof v === "number") {
          if (Math.abs(v) > Number.MAX_SAFE_INTEGER) found = true;
        } else if (typeof v === "object" && v !== null) {
          stack[++top] = v;
          depths[top] = depth + 1;
        }
      }
    } else {
      for (const k in o as object) {
        if (k === "__type__") found = true;
        size += 8 + k.length;
        const v = (o as Record<string, unknown>)[k];
        if (typeof v === "string") size += v.length;
        else if (typeof v === "number") {
          if (Math.abs(v) > Number.MAX_SAFE_INTEGER) found = true;
        } else if (typeof v === "object" && v !== null) {
          stack[++top] = v;
          depths[top] = depth + 1;
        }
      }
    }
  }
  for (; top >= 0; top--) stack[top] = undefined;
  if (stack.length > KEPT_STACK) stack.length = depths.length = 0;
  if (shape !== undefined && !found) {
    shape.depth = deepest;
    shape.size = size;
  }
  return found;
}

/** {@link needsReviver}'s stacks (values, their depths), kept between calls. */
const REVIVER_STACK: unknown[] = [];
const DEPTH_STACK: number[] = [];
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
    if (this.#text.charCodeAt(0) === 0xfeff) {
      this.#fail(
        "it starts with a byte-order mark (U+FEFF), which JSON does not allow (Python's " +
          "json.loads refuses it too): write the JSON without one",
      );
    }
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
