/**
 * Values taken from messages, made safe for one line of the worker's log.
 *
 * @module
 */

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
 * A value taken from a message (task name, id, queue, reason, hostname) for
 * one log line or one row of the `events` live view: every character Python's
 * `repr` would escape is escaped as it does — line breaks (`\n`), controls
 * (`\x1b`, the C1 controls `\x80`–`\x9f` such as the one-byte CSI `\x9b`) and
 * the invisible format characters (`\u202e`, the bidi overrides and isolates
 * U+202A–U+202E and U+2066–U+2069, the zero-width U+200B–U+200F, `\u2028`,
 * `\u2029`, `\ufeff`, `\xa0`). So a task name cannot write a forged line of its
 * own, nor reorder what an operator reads ("Trojan Source"); Celery logs such
 * values with `%r`, which escapes the same. Printable text outside ASCII
 * (accents, CJK, emoji) is kept. Tracebacks keep their lines.
 *
 * @example
 * ```ts ignore
 * oneLine("t.add\nforged"); // "t.add\\nforged"
 * oneLine("t.\u202eppa"); // "t.\\u202eppa"
 * oneLine("tâche.ajouter"); // "tâche.ajouter"
 * oneLine(null); // null
 * ```
 *
 * @param text the value, or null
 * @returns it with its unprintable characters escaped (the same string when it has none)
 */
export function oneLine<T extends string | null>(text: T): T | string {
  if (text === null || text.search(UNPRINTABLE) === -1) return text;
  return text.replace(UNPRINTABLE, escaped);
}
