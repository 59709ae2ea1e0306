/**
 * Celery's rate-limit notation: `"10/s"`, `"100/m"`, `"1000/h"`, or a plain
 * number per second.
 *
 * @module
 */

import { jsonText } from "./json.ts";

const PER_SECOND: Record<string, number> = { s: 1, m: 60, h: 3600 };

/**
 * Parse a rate limit into runs per second; 0 means no limit (as in Celery,
 * where `"0"`, `0` and an empty value disable the limit).
 *
 * @example
 * ```ts
 * import { parseRate } from "@celeriac/celeriac/protocol";
 * parseRate("10/s"); // 10
 * parseRate("30/m"); // 0.5
 * parseRate(2.5); // 2.5
 * parseRate("0"); // 0: unlimited
 * ```
 *
 * @param value `"<n>/s"`, `"<n>/m"`, `"<n>/h"`, `"<n>"` or a number
 * @param option what the value configures, named in the error message
 * @returns runs per second
 * @throws {TypeError} when the value is not a rate
 */
export function parseRate(value: string | number, option: string = "rateLimit"): number {
  let perSecond = NaN;
  if (typeof value === "number") {
    perSecond = value;
  } else if (typeof value === "string") {
    const m = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:\/\s*([smh]))?\s*$/.exec(value);
    if (m) perSecond = Number(m[1]) / PER_SECOND[m[2] ?? "s"];
  }
  if (!Number.isFinite(perSecond) || perSecond < 0) {
    throw new TypeError(
      `${option} must be a rate such as "10/s", "100/m", "1000/h" or a number per second, ` +
        `got ${jsonText(value)}`,
    );
  }
  return perSecond;
}
