/**
 * Date formats on the Celery wire: Python `isoformat()` output and parsing.
 *
 * @module
 */

import { EncodeError } from "./errors.ts";

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/**
 * Format a `Date` the way Python's `datetime.isoformat()` does for a UTC
 * datetime: microseconds only when non-zero, then the given suffix.
 *
 * @example
 * ```ts
 * import { pyIsoFormat } from "@celeriac/celeriac/protocol";
 * pyIsoFormat(new Date("2026-01-02T03:04:05.600Z"), "Z"); // "2026-01-02T03:04:05.600000Z"
 * pyIsoFormat(new Date("2026-01-02T03:04:05Z"), "+00:00"); // "2026-01-02T03:04:05+00:00"
 * ```
 *
 * @param date the instant to format
 * @param suffix appended after the time: `"Z"`, `"+00:00"` or `""` (naive)
 * @returns the formatted string
 * @throws {EncodeError} for an invalid date
 */
export function pyIsoFormat(date: Date, suffix: "Z" | "+00:00" | ""): string {
  if (!Number.isFinite(date.getTime())) throw new EncodeError("Invalid Date cannot be encoded");
  const base = `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1, 2)}-${
    pad(date.getUTCDate(), 2)
  }T${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}`;
  const ms = date.getUTCMilliseconds();
  return base + (ms ? "." + pad(ms, 3) + "000" : "") + suffix;
}

const ZONE = /(?:[zZ]|[+-]\d\d:?\d\d)$/;

/**
 * Parse an ISO-8601 date as Celery writes it (`eta`, `expires`,
 * `date_done`). A string without a zone is read as UTC, as the Celery 5.2
 * worker does.
 *
 * @example
 * ```ts
 * import { parsePyDate } from "@celeriac/celeriac/protocol";
 * parsePyDate("2026-11-24T02:47:40.140170+00:00").toISOString(); // "2026-11-24T02:47:40.140Z"
 * parsePyDate("2030-01-01T12:00:00").toISOString();             // "2030-01-01T12:00:00.000Z"
 * ```
 *
 * @param text the ISO text
 * @returns the instant (an Invalid Date when the text is not a date)
 */
export function parsePyDate(text: string): Date {
  const trimmed = text.replace(/(\.\d{3})\d+/, "$1");
  return new Date(ZONE.test(text) ? trimmed : trimmed + "Z");
}
