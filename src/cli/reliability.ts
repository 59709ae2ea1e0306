/**
 * Worker options about delivery reliability on the command line:
 * `--max-deliveries N` (poison messages).
 *
 * @module
 */

/** The options, for `parseArgs`. */
export const RELIABILITY_OPTIONS = {
  "max-deliveries": { type: "string" },
} as const;

/** Their lines in the usage text. */
export const RELIABILITY_USAGE = `
      --max-deliveries N     park a message as poison (FAILURE stored) once consumers died
                             holding it N times (x-delivery-count; default 5, 0 = never)`;

/**
 * Read the reliability options.
 *
 * @example
 * ```ts
 * import { reliabilityOptions } from "./reliability.ts";
 * reliabilityOptions({ "max-deliveries": "3" }); // { maxDeliveries: 3 }
 * ```
 *
 * @param values parsed flags
 * @returns the worker options they set
 * @throws {TypeError} for a value that is not a whole number >= 0
 */
export function reliabilityOptions(values: Record<string, unknown>): { maxDeliveries?: number } {
  const text = values["max-deliveries"];
  if (text === undefined) return {};
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    throw new TypeError(`--max-deliveries needs a whole number >= 0, got "${text}"`);
  }
  return { maxDeliveries: n };
}
