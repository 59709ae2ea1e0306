/**
 * Python `repr()` of JSON-like values, for the `argsrepr` / `kwargsrepr`
 * headers that logs, events and `celery inspect` show.
 *
 * @module
 */

/**
 * Celery's `argsrepr_maxsize` / `kwargsrepr_maxsize` default.
 *
 * @example Long arguments are truncated in logs
 * ```ts
 * import { argsRepr, REPR_MAXSIZE } from "@celeriac/celeriac/protocol";
 * const repr = argsRepr(["x".repeat(5000)]);
 * repr.length === REPR_MAXSIZE; // true
 * repr.endsWith("..."); // true
 * argsRepr(["x".repeat(5000)], 8 * REPR_MAXSIZE).length; // 5005: the whole repr
 * ```
 */
export const REPR_MAXSIZE = 1024;

/**
 * The characters Python's `str.isprintable()` rejects, which its `repr`
 * (Celery's `%r`) escapes: controls (Cc, C1 included), format characters (Cf:
 * bidi overrides and isolates, zero-width characters, U+FEFF), surrogates,
 * private use, unassigned code points, the line and paragraph separators and
 * every space separator but " ".
 */
const UNPRINTABLE = /[[\p{C}\p{Zl}\p{Zp}\p{Zs}]--[ ]]/gv;
const ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** One character as Python's `repr` escapes it: `\x1b`, `\u202e`, `\U000e0001`. */
function escaped(c: string): string {
  const known = ESCAPES[c];
  if (known !== undefined) return known;
  const code = c.codePointAt(0)!;
  const hex = code.toString(16);
  if (code < 0x100) return `\\x${hex.padStart(2, "0")}`;
  if (code < 0x10000) return `\\u${hex.padStart(4, "0")}`;
  return `\\U${hex.padStart(8, "0")}`;
}

/**
 * `text` with every character Python's `str.isprintable()` rejects escaped as
 * Python's `repr` escapes it: `\n`, `\t`, `\r`, the controls (`\x1b`, the C1
 * controls `\x80`–`\x9f`), the format characters (the bidi overrides and
 * isolates U+202A–U+202E and U+2066–U+2069, the zero-width U+200B–U+200F,
 * `\ufeff`, `\xad`), `\u2028`, `\u2029`, every space but " " (`\xa0`,
 * `\u3000`), lone surrogates, private use and unassigned code points
 * (`\U000e0001`). Printable text outside ASCII (accents, CJK, emoji) is kept;
 * quotes and backslashes are left to the caller. The one rule behind the
 * strings of {@link pyRepr} / {@link argsRepr} and the values the worker's
 * log lines take from messages.
 *
 * @example
 * ```ts ignore
 * escapeUnprintable("t.add\nforged"); // "t.add\\nforged"
 * escapeUnprintable("safe\u202etxt.exe"); // "safe\\u202etxt.exe"
 * escapeUnprintable("tâche \u{1f600}"); // "tâche \u{1f600}"
 * ```
 *
 * @param text any string
 * @returns it with its unprintable characters escaped (the same string when it has none)
 */
export function escapeUnprintable(text: string): string {
  if (text.search(UNPRINTABLE) === -1) return text;
  return text.replace(UNPRINTABLE, escaped);
}

/** Thrown by {@link Out.push} once the text is longer than its limit. */
const FULL = Symbol("repr full");

/**
 * The repr text built so far. It stops (throws {@link FULL}) one character
 * past its limit, so a 10 MB argument costs no more than a short one when only
 * its first kilobyte is kept.
 */
class Out {
  readonly parts: string[] = [];
  length = 0;
  readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Characters still wanted (one past the limit tells that it was cut). */
  get room(): number {
    return this.limit + 1 - this.length;
  }

  push(text: string): void {
    this.parts.push(text);
    this.length += text.length;
    if (this.length > this.limit) throw FULL;
  }

  text(): string {
    return this.parts.join("");
  }
}

/** A repr's quote and the backslash, escaped with a backslash before {@link escapeUnprintable}. */
const QUOTE_OR_BACKSLASH: Record<string, RegExp> = { "'": /['\\]/g, '"': /["\\]/g };

function reprString(s: string, out: Out): void {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  // Every character of s writes at least one character: the first `room` are enough.
  const head = s.length > out.room ? s.slice(0, out.room) : s;
  const text = quote + escapeUnprintable(head.replace(QUOTE_OR_BACKSLASH[quote], "\\$&"));
  out.push(head === s ? text + quote : text);
}

function reprValue(v: unknown, seen: Set<unknown>, out: Out): void {
  switch (typeof v) {
    case "string":
      return reprString(v, out);
    case "number":
      if (Number.isNaN(v)) return out.push("nan");
      if (!Number.isFinite(v)) return out.push(v > 0 ? "inf" : "-inf");
      return out.push(String(v));
    case "bigint":
      return out.push(v.toString());
    case "boolean":
      return out.push(v ? "True" : "False");
    case "undefined":
      return out.push("None");
    case "function":
    case "symbol":
      return out.push(`<${typeof v}>`);
  }
  if (v === null) return out.push("None");
  if (seen.has(v)) return out.push("[...]");
  seen.add(v);
  try {
    if (v instanceof Date) return reprString(v.toISOString(), out);
    if (ArrayBuffer.isView(v)) return out.push(`<${v.constructor.name} of ${v.byteLength} bytes>`);
    if (Array.isArray(v)) {
      out.push("[");
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out.push(", ");
        reprValue(v[i], seen, out);
      }
      return out.push("]");
    }
    const obj = v as Record<string, unknown>;
    out.push("{");
    let first = true;
    for (const k in obj) {
      if (!Object.hasOwn(obj, k)) continue;
      if (!first) out.push(", ");
      first = false;
      reprString(k, out);
      out.push(": ");
      reprValue(obj[k], seen, out);
    }
    out.push("}");
  } finally {
    seen.delete(v);
  }
}

/** Build a repr with `write`, cut to `maxsize` characters ("..." marks a cut). */
function bounded(maxsize: number, write: (out: Out) => void): string {
  const out = new Out(maxsize);
  try {
    write(out);
  } catch (err) {
    if (err !== FULL) throw err;
  }
  const s = out.text();
  return s.length > maxsize ? s.slice(0, maxsize - 3) + "..." : s;
}

/**
 * Python `repr()` of one JSON-like value: `'a'`, `None`, `[1, True]`.
 *
 * @example
 * ```ts
 * import { pyRepr } from "@celeriac/celeriac/protocol";
 * pyRepr({ ok: true, n: null }); // "{'ok': True, 'n': None}"
 * pyRepr("it's"); // "\"it's\""
 * ```
 *
 * @param value the value
 * @returns the repr text (never truncated)
 */
export function pyRepr(value: unknown): string {
  return bounded(Infinity, (out) => reprValue(value, new Set(), out));
}

/**
 * Python `repr()` of a task's return value, cut to `maxsize` characters as
 * Celery's `saferepr(result, resultrepr_maxsize)`: what `task-succeeded`
 * events carry. Numbers, booleans and `None` take a fast path; a large
 * value costs no more than its first `maxsize` characters.
 *
 * @example
 * ```ts
 * import { resultRepr } from "@celeriac/celeriac/protocol";
 * resultRepr(1); // "1"
 * resultRepr({ ok: true }); // "{'ok': True}"
 * resultRepr("x".repeat(5000)).length; // 1024
 * ```
 *
 * @param value the return value
 * @param maxsize truncate to this many characters (default {@link REPR_MAXSIZE})
 * @returns the repr text ("..." marks a cut)
 */
export function resultRepr(value: unknown, maxsize: number = REPR_MAXSIZE): string {
  switch (typeof value) {
    case "number":
      if (Number.isFinite(value)) {
        const text = String(value);
        if (text.length <= maxsize) return text;
      }
      break;
    case "boolean":
      return value ? "True" : "False";
    case "undefined":
      return "None";
  }
  if (value === null) return "None";
  return bounded(maxsize, (out) => reprValue(value, new Set(), out));
}

/**
 * Python `repr()` of a positional-argument tuple: `(2, 3)`, `(7,)`, `()`.
 *
 * @example
 * ```ts
 * import { argsRepr } from "@celeriac/celeriac/protocol";
 * argsRepr([2, "a", null]); // "(2, 'a', None)"
 * ```
 *
 * @param args the positional arguments
 * @param maxsize truncate to this many characters
 * @returns the repr text
 */
export function argsRepr(args: readonly unknown[], maxsize: number = REPR_MAXSIZE): string {
  return bounded(maxsize, (out) => {
    const seen = new Set<unknown>();
    out.push("(");
    for (let i = 0; i < args.length; i++) {
      if (i > 0) out.push(", ");
      reprValue(args[i], seen, out);
    }
    out.push(args.length === 1 ? ",)" : ")");
  });
}

/**
 * Python `repr()` of a keyword-argument dict: `{'x': 1}`.
 *
 * @example
 * ```ts
 * import { kwargsRepr } from "@celeriac/celeriac/protocol";
 * kwargsRepr({ x: 1, y: true }); // "{'x': 1, 'y': True}"
 * ```
 *
 * @param kwargs the keyword arguments
 * @param maxsize truncate to this many characters
 * @returns the repr text
 */
export function kwargsRepr(
  kwargs: Readonly<Record<string, unknown>>,
  maxsize: number = REPR_MAXSIZE,
): string {
  return bounded(maxsize, (out) => reprValue(kwargs, new Set(), out));
}
