/**
 * Worker options about reliability on the command line:
 * `--max-deliveries N` (poison messages) and `--leaked-threads-restart N`
 * (threads of terminated Web Workers that still run).
 *
 * @module
 */

/** The options, for `parseArgs`. */
export const RELIABILITY_OPTIONS = {
  "max-deliveries": { type: "string" },
  "leaked-threads-restart": { type: "string" },
} as const;

/** Their lines in the usage text. */
export const RELIABILITY_USAGE = `
      --max-deliveries N     park a message as poison (FAILURE stored) once consumers died
                             holding it N times (x-delivery-count; default 5, 0 = never)
      --leaked-threads-restart N
                             restart (warm shutdown, then the same command) once N threads
                             of terminated Web Workers keep a core busy 5 s on: Deno does not
                             stop a task in a synchronous loop at its hard time limit
                             (default 1, 0 = only report them; seeing them takes -A on Linux)`;

function wholeNumber(values: Record<string, unknown>, flag: string): number | undefined {
  const text = values[flag];
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    throw new TypeError(`--${flag} needs a whole number >= 0, got "${text}"`);
  }
  return n;
}

/**
 * Read the reliability options.
 *
 * @example
 * ```ts
 * import { reliabilityOptions } from "./reliability.ts";
 * reliabilityOptions({ "max-deliveries": "3" }); // { maxDeliveries: 3 }
 * reliabilityOptions({ "leaked-threads-restart": "0" }); // { leakedThreadsRestart: 0 }
 * ```
 *
 * @param values parsed flags
 * @returns the worker options they set
 * @throws {TypeError} for a value that is not a whole number >= 0
 */
export function reliabilityOptions(
  values: Record<string, unknown>,
): { maxDeliveries?: number; leakedThreadsRestart?: number } {
  const out: { maxDeliveries?: number; leakedThreadsRestart?: number } = {};
  const maxDeliveries = wholeNumber(values, "max-deliveries");
  if (maxDeliveries !== undefined) out.maxDeliveries = maxDeliveries;
  const leaked = wholeNumber(values, "leaked-threads-restart");
  if (leaked !== undefined) out.leakedThreadsRestart = leaked;
  return out;
}
