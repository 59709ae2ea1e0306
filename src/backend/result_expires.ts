/**
 * The check every result backend makes of `resultExpires` when it opens,
 * so that a bad value fails there, naming the option, and not at the
 * first result stored.
 *
 * @module
 */

/**
 * Check a result expiry in seconds: a finite number >= 0 (0 keeps results
 * forever). Each backend then reads a fraction as Celery does for it
 * (Redis: whole seconds, truncated; rpc://: whole milliseconds, truncated;
 * KV: whole milliseconds, rounded up).
 *
 * @example
 * ```ts
 * import { checkResultExpires } from "./result_expires.ts";
 * checkResultExpires(3600); // 3600
 * try {
 *   checkResultExpires(-1);
 * } catch (err) {
 *   console.assert(err instanceof RangeError);
 * }
 * ```
 *
 * @param value the expiry in seconds
 * @param option the option's name for the message (default `resultExpires`)
 * @returns `value`
 * @throws {RangeError} for a negative number, NaN or Infinity
 */
export function checkResultExpires(value: number, option = "resultExpires"): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `${option} must be a finite number of seconds >= 0 (0 keeps results forever), got ${
        String(value)
      }`,
    );
  }
  return value;
}
