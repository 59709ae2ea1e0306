/**
 * The most of an event's text the dashboard keeps: a task's args, result or
 * traceback is cut when stored, so that "the last N tasks" is bounded in
 * bytes too, whatever a sender puts in its events. Celery itself cuts the
 * args, kwargs and result reprs of its events to about 1,024 characters.
 *
 * @module
 */

/**
 * Characters kept of a task's args, kwargs, result and exception (Celery's
 * reprs, about 1,024 characters, fit whole): past it the text is cut and
 * {@link TRUNCATED} appended.
 */
export const MAX_TEXT = 2048;

/** Characters kept of a traceback: its end (the innermost frames and the error). */
export const MAX_TRACEBACK = 8192;

/** Characters kept of an ETA or expiry. */
export const MAX_SHORT_TEXT = 256;

/**
 * Characters an event's task id, parent or root id, node name or task name may have: an event
 * with a longer one is refused (these are keys; cut, two could become one). A longer queue
 * name is not kept (a cut one would route a retry to a queue no worker consumes).
 */
export const MAX_KEY = 512;

/** Appended to a text that was cut (a traceback's starts with `(truncated)…`). */
export const TRUNCATED = "…(truncated)";

/** Whether the UTF-16 code unit at `i` is the first half of a pair (not to be split). */
function highSurrogate(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff;
}

/**
 * A copy of `s` that holds its own characters. V8 makes a long slice of a string a view that keeps
 * the whole string alive: 2 KiB kept of a 1 MiB field would keep the MiB (measured: 200 such
 * slices held 347 MiB of heap, copies 5 MiB). A JSON round trip copies, lone surrogates and all.
 */
function ownCopy(s: string): string {
  return JSON.parse(JSON.stringify(s));
}

/**
 * `s` if it has at most `max` characters, else its first `max` and {@link TRUNCATED}.
 *
 * @example
 * ```ts
 * import { capText } from "./text_caps.ts";
 * capText("abcdef", 3); // "abc…(truncated)"
 * capText("abc", 3); // "abc"
 * ```
 *
 * @param s the text
 * @param max characters kept
 * @returns the text kept
 */
export function capText(s: string, max: number): string {
  if (s.length <= max) return s;
  return ownCopy(s.slice(0, highSurrogate(s, max - 1) ? max - 1 : max)) + TRUNCATED;
}

/**
 * `s` if it has at most `max` characters, else `(truncated)…` and its last `max`.
 *
 * @example
 * ```ts
 * import { capTail } from "./text_caps.ts";
 * capTail("abcdef", 3); // "(truncated)…def"
 * ```
 *
 * @param s the text
 * @param max characters kept
 * @returns the text kept
 */
export function capTail(s: string, max: number): string {
  if (s.length <= max) return s;
  const from = s.length - max;
  return "(truncated)…" + ownCopy(s.slice(highSurrogate(s, from - 1) ? from + 1 : from));
}
