/**
 * Checks of the numbers in an event's base fields, made when an event is
 * decoded: a receiver computes with them outside any handler's try.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import type { EventBase } from "./events.ts";
import { jsonText } from "./json.ts";

/** Largest timestamp Python's `datetime` holds (9999-12-31 23:59:59 UTC), in seconds. */
const MAX_TIMESTAMP = 253_402_300_799;

/**
 * Refuse an event whose base fields every receiver computes with are not
 * numbers (a throw there would be uncaught: a dashboard's timer, the dump
 * loop): `timestamp` seconds within Python's `datetime` range (up to the
 * year 9999, and as far before 1970), `utcoffset` hours within a day,
 * `clock` and `pid` numbers (an integer beyond 2^53, decoded as a bigint,
 * made a number). Absent fields are left absent.
 *
 * @example
 * ```ts
 * import { checkEventNumbers } from "./event_fields.ts";
 * const base = { type: "worker-heartbeat", hostname: "w@h", utcoffset: 0, pid: 1, clock: 1 };
 * checkEventNumbers({ ...base, timestamp: 1.7e9 });
 * try {
 *   checkEventNumbers({ ...base, timestamp: Infinity });
 * } catch (err) {
 *   console.log((err as Error).message); // An event's timestamp must be a number of seconds ...
 * }
 * ```
 *
 * @param e the event, as decoded (its bigint clock or pid made numbers)
 * @throws {ProtocolError} naming the field and its value
 */
export function checkEventNumbers(e: EventBase): void {
  const f = e as unknown as Record<string, unknown>;
  // Named loads, not a loop over the two keys: a keyed load by a variable key costs more on
  // each of the thousands of events a second a receiver decodes.
  if (typeof f.clock === "bigint") f.clock = Number(f.clock);
  if (typeof f.pid === "bigint") f.pid = Number(f.pid);
  const bad = !within(f.timestamp, MAX_TIMESTAMP)
    ? "timestamp"
    : !within(f.utcoffset, 24)
    ? "utcoffset"
    : !within(f.clock, Infinity)
    ? "clock"
    : !within(f.pid, Infinity)
    ? "pid"
    : null;
  if (bad === null) return;
  const value = f[bad];
  throw new ProtocolError(
    `An event's ${bad} must be a number${
      bad === "timestamp"
        ? " of seconds up to the year 9999"
        : bad === "utcoffset"
        ? " of hours"
        : ""
    }, got ${shown(value)}`,
  );
}

/** A refused value for a message: a number as JS writes it (NaN, 1e+300), else its JSON, shortened. */
function shown(value: unknown): string {
  if (typeof value === "number") return String(value);
  const text = jsonText(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** Absent, or a number no further from 0 than `limit` (so not NaN). */
function within(v: unknown, limit: number): boolean {
  return v === undefined || (typeof v === "number" && Math.abs(v) <= limit);
}
