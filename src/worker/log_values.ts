/**
 * Values taken from messages, made safe for one line of the worker's log.
 *
 * @module
 */

// Matching control characters is the point here.
// deno-lint-ignore no-control-regex
const CONTROLS = /[\x00-\x1f\x7f-\x9f]/g;
const ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * A value taken from a message (task name, id, queue, reason) for one log
 * line: line breaks and other control characters escaped (`\n`, `\x1b`,
 * and the C1 controls `\x80`–`\x9f`, such as the one-byte CSI `\x9b`),
 * so a task name holding a line break cannot write a forged line of its
 * own (Celery logs such values with `%r`, which escapes the same). The
 * `events` live view writes event fields through it too. Tracebacks keep
 * their lines.
 *
 * @example
 * ```ts ignore
 * oneLine("t.add\nforged"); // "t.add\\nforged"
 * oneLine(null); // null
 * ```
 *
 * @param text the value, or null
 * @returns it with its control characters escaped (the same string when it has none)
 */
export function oneLine<T extends string | null>(text: T): T | string {
  if (text === null || text.search(CONTROLS) === -1) return text;
  return text.replace(
    CONTROLS,
    (c) => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}
