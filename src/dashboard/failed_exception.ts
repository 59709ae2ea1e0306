/**
 * The exception a `task-failed` event names. Celery 5.2.6's solo pool
 * (`-P solo`, and threads) sends the repr of billiard's wrapper,
 * `ExceptionWithTraceback()`, instead of the task's exception (its
 * `Request.on_failure` reprs `exc_info.exception` before unwrapping it);
 * the event's traceback still ends with the real one, which is read from it.
 *
 * @module
 */

import { pyRepr } from "../protocol/repr.ts";

/** What Celery 5.2.6's solo pool puts in a task-failed event's `exception`. */
const WRAPPED = "ExceptionWithTraceback()";

/** A frame line of a Python traceback. */
const FRAME = /^ {2}File "/;

/**
 * The exception repr a `task-failed` (or `task-retried`) event's fields
 * stand for: its `exception`, or, when that is Celery 5.2.6's
 * `ExceptionWithTraceback()` wrapper, the repr of the exception its
 * traceback ends with (`ValueError: boom` gives `ValueError('boom')`, the
 * class name without its module; several arguments, `E: ('a', 1)`, give
 * `E('a', 1)`).
 *
 * @example
 * ```ts
 * import { failedException } from "./failed_exception.ts";
 * const tb = 'Traceback (most recent call last):\n  File "t.py", line 2, in f\n' +
 *   "    raise ValueError('boom')\nValueError: boom\n";
 * failedException("ExceptionWithTraceback()", tb); // "ValueError('boom')"
 * failedException("KeyError('k')", tb); // "KeyError('k')"
 * ```
 *
 * @param exception the event's `exception` field
 * @param traceback the event's `traceback` field
 * @returns the exception's repr, or null when the event has none
 */
export function failedException(exception: unknown, traceback: unknown): string | null {
  if (typeof exception !== "string") return null;
  if (exception !== WRAPPED || typeof traceback !== "string") return exception;
  const lines = traceback.replace(/\n+$/, "").split("\n");
  const frame = lines.findLastIndex((l) => FRAME.test(l));
  if (frame < 0) return exception;
  // The frame's source line (and Python 3.11's carets) are indented; the exception follows.
  let at = frame + 1;
  while (at < lines.length && lines[at].startsWith("    ")) at++;
  const text = lines.slice(at).join("\n");
  if (text === "") return exception;
  const sep = text.indexOf(": ");
  const qualified = sep < 0 ? text : text.slice(0, sep);
  const name = qualified.slice(qualified.lastIndexOf(".") + 1);
  if (sep < 0) return `${name}()`;
  const message = text.slice(sep + 2);
  // str() of an exception with several arguments is their tuple's repr, as its repr shows them.
  return /^\(.*, .*\)$/s.test(message) ? `${name}${message}` : `${name}(${pyRepr(message)})`;
}
