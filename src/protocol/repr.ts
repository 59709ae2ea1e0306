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

function reprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + quote;
}

function reprValue(v: unknown, seen: Set<unknown>): string {
  switch (typeof v) {
    case "string":
      return reprString(v);
    case "number":
      if (Number.isNaN(v)) return "nan";
      if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
      return String(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "True" : "False";
    case "undefined":
      return "None";
    case "function":
    case "symbol":
      return `<${typeof v}>`;
  }
  if (v === null) return "None";
  if (seen.has(v)) return "[...]";
  seen.add(v);
  try {
    if (v instanceof Date) return reprString(v.toISOString());
    if (ArrayBuffer.isView(v)) return `<${v.constructor.name} of ${v.byteLength} bytes>`;
    if (Array.isArray(v)) return "[" + v.map((x) => reprValue(x, seen)).join(", ") + "]";
    const parts = Object.entries(v as Record<string, unknown>).map(
      ([k, x]) => reprString(k) + ": " + reprValue(x, seen),
    );
    return "{" + parts.join(", ") + "}";
  } finally {
    seen.delete(v);
  }
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
  return reprValue(value, new Set());
}

function truncate(s: string, maxsize: number): string {
  return s.length > maxsize ? s.slice(0, maxsize - 3) + "..." : s;
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
  const seen = new Set<unknown>();
  const inner = args.map((a) => reprValue(a, seen)).join(", ");
  return truncate(args.length === 1 ? `(${inner},)` : `(${inner})`, maxsize);
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
  return truncate(reprValue(kwargs, new Set()), maxsize);
}
