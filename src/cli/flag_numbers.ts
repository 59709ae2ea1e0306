/**
 * The numbers of command-line flags, checked: seconds > 0, whole numbers
 * >= 1, whole numbers >= 0, sizes in bytes. Apart from `options.ts`, so that the modules
 * it gathers options from (`reliability.ts`) can use them without a cycle.
 *
 * @module
 */

import { UsageError } from "./exit_codes.ts";

/** A decimal number, as Python's `float()` reads one for Celery's `-t` (no `0x10`, no `0b1`). */
const DECIMAL = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?\s*$/i;

/**
 * A flag's number of seconds, > 0; `undefined` when the flag is absent.
 *
 * @example
 * ```ts
 * positiveNumber("30", "--time-limit"); // 30
 * positiveNumber("1.5e1", "--timeout"); // 15
 * ```
 *
 * @throws {UsageError} naming the flag when the value is not a decimal number (`0x10`, `abc`),
 *   not > 0, or not finite, its milliseconds included (`Infinity`, `1e308`, `1e400`)
 */
export function positiveNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const read = Number(value);
  const n = DECIMAL.test(value) ? read : NaN;
  if (n === Infinity || read === Infinity || (n > 0 && !Number.isFinite(n * 1000))) {
    throw new UsageError(`${flag} needs a finite number of seconds > 0, got "${value}"`);
  }
  if (Number.isNaN(n) && Number.isFinite(read) && value.trim() !== "") {
    throw new UsageError(
      `${flag} needs a number of seconds > 0 written in decimal (30, 0.5, 1e3), got "${value}"`,
    );
  }
  if (!(n > 0)) throw new UsageError(`${flag} needs a number of seconds > 0, got "${value}"`);
  return n;
}

/**
 * How long to wait for replies: {@link positiveNumber}, but a number <= 0
 * is no wait at all (0), as Celery's `inspect -t -1` waits no time (and so
 * reports no node); `undefined` when the flag is absent.
 *
 * @example
 * ```ts
 * replyWait("2"); // 2
 * replyWait("-1"); // 0
 * ```
 *
 * @param value the flag's text
 * @param flag the flag, for the message
 * @returns the seconds
 * @throws {UsageError} as {@link positiveNumber} for what is not a finite decimal number
 */
export function replyWait(value: string | undefined, flag = "--timeout"): number | undefined {
  if (value !== undefined && DECIMAL.test(value) && Number(value) <= 0) return 0;
  return positiveNumber(value, flag);
}

/**
 * A flag's whole number >= 1; `undefined` when the flag is absent.
 *
 * @example
 * ```ts
 * positiveInt("4", "--concurrency"); // 4
 * ```
 *
 * @throws {UsageError} naming the flag when the value is not a whole number >= 1
 */
export function positiveInt(value: string | undefined, flag: string): number | undefined {
  return intAtLeast(value, flag, 1);
}

/**
 * A flag's whole number >= 0 (where 0 turns something off); `undefined`
 * when the flag is absent.
 *
 * @example
 * ```ts
 * wholeNumber("0", "--max-deliveries"); // 0
 * ```
 *
 * @throws {UsageError} naming the flag when the value is not a whole number >= 0
 */
export function wholeNumber(value: string | undefined, flag: string): number | undefined {
  return intAtLeast(value, flag, 0);
}

function intAtLeast(value: string | undefined, flag: string, least: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < least) {
    throw new UsageError(`${flag} needs a whole number >= ${least}, got "${value}"`);
  }
  return n;
}

/** Multipliers of a size's unit: none for bytes, K, M, G (powers of 1,024, as `KiB`, `MiB`, `GiB`). */
const SIZE_UNITS: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 };

/**
 * A flag's size in bytes, >= 1: a whole number, optionally with a unit
 * `K`, `M` or `G` (KiB, MiB, GiB; `KiB`, `MB`, ... are read the same);
 * `undefined` when the flag is absent.
 *
 * @example
 * ```ts
 * byteSize("64M", "--max-decompressed-size"); // 67108864
 * byteSize("1048576", "--max-decompressed-size"); // 1048576
 * ```
 *
 * @throws {UsageError} naming the flag when the value is not such a size
 */
export function byteSize(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)\s*([kmg]?)(?:i?b)?$/i.exec(value.trim());
  const n = m ? Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()] : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(
      `${flag} needs a size in bytes >= 1, optionally with K, M or G (KiB, MiB, GiB), ` +
        `got "${value}"`,
    );
  }
  return n;
}
