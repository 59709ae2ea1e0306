/**
 * Values taken from messages, made safe for one line of the worker's log.
 *
 * @module
 */

import { escapeUnprintable } from "../protocol/repr.ts";

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
  return text === null ? text : escapeUnprintable(text);
}
