/**
 * Read back the Python reprs that events carry for `args` and `kwargs`
 * (`(2, 3)`, `{'x': [1, None]}`), so that a failed task can be sent again
 * with the same arguments. Only literals: str, int, float, True, False,
 * None, tuples, lists, dicts. Numbers keep their Python type and value: an
 * int beyond 2^53 is a `bigint`, a whole float (`1.0`, `1e+30`) a
 * `PyFloat`, so that the task is sent again with the very same values. Pure.
 *
 * @module
 */

import { PyFloat } from "../protocol/json.ts";

/**
 * A repr that is not a plain literal (e.g. `datetime.date(2026, 1, 2)`, or
 * one cut at 1,024 characters by the worker).
 *
 * @example
 * ```ts
 * import { parsePyLiteral, PyLiteralError } from "@celeriac/celeriac/dashboard";
 * try { parsePyLiteral("(Decimal('1'),)"); } catch (e) { e instanceof PyLiteralError; } // true
 * ```
 */
export class PyLiteralError extends Error {
  /** Always `PyLiteralError`. */
  override name = "PyLiteralError";
  /** Stable code. */
  readonly code = "py_literal";
}

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  "\\": "\\",
  "'": "'",
  '"': '"',
  "0": "\0",
  a: "\x07",
  b: "\b",
  f: "\f",
  v: "\v",
};

/**
 * How deep tuples, lists and dicts may nest: CPython's own parser refuses source nested deeper
 * than 200 brackets, and a deeper text would overflow the stack of this recursive parser.
 */
export const MAX_PY_LITERAL_DEPTH = 200;

/** A number's repr as the value Python has: int (bigint past 2^53) or float (PyFloat when whole). */
function pyNumber(repr: string): number | bigint | PyFloat | undefined {
  const v = Number(repr);
  if (/^-?\d+$/.test(repr)) return Number.isSafeInteger(v) ? v : BigInt(repr);
  if (!Number.isFinite(v)) return undefined;
  return Number.isInteger(v) ? new PyFloat(v) : v;
}

/**
 * Parse a Python literal repr into JSON-compatible values (tuples become
 * arrays; an int beyond 2^53 a `bigint`; a whole float a `PyFloat`).
 *
 * @example
 * ```ts
 * import { parsePyLiteral } from "@celeriac/celeriac/dashboard";
 * parsePyLiteral("(2, 'a', None, {'k': [1.5, True]})"); // [2, "a", null, { k: [1.5, true] }]
 * parsePyLiteral("(12345678901234567890, 1.0)"); // [12345678901234567890n, PyFloat(1)]
 * ```
 *
 * @param text the repr
 * @returns the value
 * @throws {PyLiteralError} when the text is not a literal, or nests deeper than
 *   {@link MAX_PY_LITERAL_DEPTH} levels
 */
export function parsePyLiteral(text: string): unknown {
  let i = 0;
  let depth = 0;
  const fail = (what: string): never => {
    throw new PyLiteralError(`Not a Python literal at character ${i}: ${what}`);
  };
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === "(" || c === "[" || c === "{") {
      if (++depth > MAX_PY_LITERAL_DEPTH) {
        fail(`nested deeper than ${MAX_PY_LITERAL_DEPTH} levels`);
      }
      const v = c === "{" ? dict() : seq(c === "(" ? ")" : "]");
      depth--;
      return v;
    }
    if (c === "'" || c === '"') return string(c);
    const word = /^(True|False|None)\b/.exec(text.slice(i));
    if (word) {
      i += word[0].length;
      return word[0] === "True" ? true : word[0] === "False" ? false : null;
    }
    const n = /^-?(\d+\.?\d*(e[+-]?\d+)?|\.\d+|inf|nan)/i.exec(text.slice(i));
    if (n) {
      i += n[0].length;
      return pyNumber(n[0]) ?? fail(`${n[0]} has no JSON form`);
    }
    return fail(`unexpected ${c === undefined ? "end" : JSON.stringify(c)}`);
  };
  const seq = (close: string): unknown[] => {
    i++;
    const out: unknown[] = [];
    for (;;) {
      ws();
      if (text[i] === close) {
        i++;
        return out;
      }
      out.push(value());
      ws();
      if (text[i] === ",") i++;
      else if (text[i] !== close) fail(`expected , or ${close}`);
    }
  };
  const dict = (): Record<string, unknown> => {
    i++;
    const out: Record<string, unknown> = {};
    for (;;) {
      ws();
      if (text[i] === "}") {
        i++;
        return out;
      }
      const k = value();
      if (typeof k !== "string") fail("dict keys must be strings");
      ws();
      if (text[i] !== ":") fail("expected :");
      i++;
      out[k as string] = value();
      ws();
      if (text[i] === ",") i++;
      else if (text[i] !== "}") fail("expected , or }");
    }
  };
  const string = (quote: string): string => {
    i++;
    let s = "";
    while (i < text.length && text[i] !== quote) {
      if (text[i] === "\\") {
        const e = text[i + 1];
        if (e === "x" || e === "u" || e === "U") {
          const len = e === "x" ? 2 : e === "u" ? 4 : 8;
          const hex = text.slice(i + 2, i + 2 + len);
          if (!/^[0-9a-f]+$/i.test(hex) || hex.length !== len) fail("bad escape");
          s += String.fromCodePoint(parseInt(hex, 16));
          i += 2 + len;
        } else if (e in ESCAPES) {
          s += ESCAPES[e];
          i += 2;
        } else fail("bad escape");
      } else s += text[i++];
    }
    if (text[i] !== quote) fail("unterminated string");
    i++;
    return s;
  };
  const v = value();
  ws();
  if (i !== text.length) fail("trailing text");
  return v;
}
