/**
 * Checks of a task call's scalar fields (times, limits, priority, names)
 * before its message is built: a `countdown` of `NaN`, a `priority` of
 * `"high"` or an `eta` that is no date would otherwise fail as "Invalid
 * Date cannot be encoded", be sent as `NaN`, or be written verbatim for
 * the worker to refuse.
 *
 * @module
 */

import { MAX_OFFSET_SECONDS } from "./embed.ts";
import { parsePyDate } from "./time.ts";

/** The fields checked, as {@link checkTaskFields} reads them. */
export interface TaskFields {
  /** Task name, for the messages. */
  task: string;
  /** Task id. */
  id: string;
  /** Earliest run time. */
  eta?: Date | string | null;
  /** Seconds until the earliest run time. */
  countdown?: number | null;
  /** Expiry: seconds, an instant or an ISO string. */
  expires?: number | Date | string | null;
  /** Message priority. */
  priority?: number;
  /** Hard time limit in seconds. */
  timeLimit?: number | null;
  /** Soft time limit in seconds. */
  softTimeLimit?: number | null;
  /** Display name. */
  shadow?: string | null;
  /** Whether to skip storing success. */
  ignoreResult?: boolean;
  /** Extra headers. */
  headers?: Readonly<Record<string, unknown>>;
}

function shown(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  if (v instanceof Date) return "an invalid Date";
  if (Array.isArray(v)) return "an array";
  return v === null ? "null" : typeof v === "object" ? "an object" : String(v);
}

function seconds(v: unknown, field: string, task: string): void {
  if (v === null || v === undefined) return;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new TypeError(
      `${field} of "${task}" must be a finite number of seconds, got ${shown(v)}`,
    );
  }
  if (Math.abs(v) > MAX_OFFSET_SECONDS) {
    throw new RangeError(
      `${field} of "${task}" is ${v} seconds, more than ${MAX_OFFSET_SECONDS} (about 100 years)`,
    );
  }
}

function instant(v: unknown, field: string, task: string, alsoSeconds: boolean): void {
  if (v === null || v === undefined) return;
  if (alsoSeconds && typeof v === "number") return seconds(v, field, task);
  const ok = v instanceof Date
    ? Number.isFinite(v.getTime())
    : typeof v === "string" && Number.isFinite(parsePyDate(v).getTime());
  if (!ok) {
    throw new TypeError(
      `${field} of "${task}" must be a Date${alsoSeconds ? ", seconds from now" : ""} or an ISO ` +
        `8601 string such as "2030-01-01T12:00:00+00:00", got ${shown(v)}`,
    );
  }
}

function limit(v: unknown, field: string, task: string): void {
  if (v === null || v === undefined) return;
  if (typeof v !== "number" || !(v >= 0) || v === Infinity) {
    throw new TypeError(
      `${field} of "${task}" must be a number of seconds >= 0 (leave it out for none), got ${
        shown(v)
      }`,
    );
  }
}

/**
 * Refuse a task call whose times, limits, priority or names have the wrong
 * type or an impossible value, naming the field, the task and the value.
 *
 * @example
 * ```ts
 * import { checkTaskFields } from "./task_fields.ts";
 * checkTaskFields({ task: "tasks.add", id: "id-1", countdown: 10, priority: 3 });
 * try {
 *   checkTaskFields({ task: "tasks.add", id: "id-1", countdown: NaN });
 * } catch (err) {
 *   console.log((err as Error).message); // countdown of "tasks.add" must be a finite number of seconds, got NaN
 * }
 * ```
 *
 * @param input the call's fields
 * @throws {TypeError} for a value of the wrong type (or `NaN`, an invalid Date, a date string that does not parse)
 * @throws {RangeError} for a countdown or expiry of more than about 100 years, or a priority outside 0–255
 */
export function checkTaskFields(input: TaskFields): void {
  const { task } = input;
  if (typeof input.id !== "string" || input.id === "") {
    throw new TypeError(
      `the task id of "${task}" must be a non-empty string, got ${shown(input.id)}`,
    );
  }
  seconds(input.countdown, "countdown", task);
  instant(input.eta, "eta", task, false);
  instant(input.expires, "expires", task, true);
  limit(input.timeLimit, "timeLimit", task);
  limit(input.softTimeLimit, "softTimeLimit", task);
  const p = input.priority;
  if (p !== undefined && p !== null) {
    if (typeof p !== "number" || !Number.isInteger(p)) {
      throw new TypeError(`priority of "${task}" must be an integer, got ${shown(p)}`);
    }
    if (p < 0 || p > 255) {
      throw new RangeError(`priority of "${task}" is ${p}: it must be 0–255`);
    }
  }
  if (input.shadow !== undefined && input.shadow !== null && typeof input.shadow !== "string") {
    throw new TypeError(`shadow of "${task}" must be a string, got ${shown(input.shadow)}`);
  }
  if (input.ignoreResult !== undefined && typeof input.ignoreResult !== "boolean") {
    throw new TypeError(
      `ignoreResult of "${task}" must be a boolean, got ${shown(input.ignoreResult)}`,
    );
  }
  const h = input.headers;
  if (h !== undefined && h !== null && (typeof h !== "object" || Array.isArray(h))) {
    throw new TypeError(`headers of "${task}" must be an object, got ${shown(h)}`);
  }
}
