/**
 * Checks of a task call's scalar options (times, limits, priority,
 * destination, names) where a call enters: the client's sends, signatures'
 * options and beat entries. A `countdown` of `NaN`, a `priority` of
 * `"high"` or an `eta` that is no date would otherwise fail as "Invalid
 * Date cannot be encoded", be sent as `NaN`, or be written verbatim for
 * the worker to refuse. Not applied to what a worker re-encodes from the
 * wire (retries, follow-ups): values another producer sent are carried
 * over as they came.
 *
 * @module
 */

import { COMPRESSION_NAMES, type CompressionName } from "./compression_names.ts";
import { MAX_OFFSET_SECONDS } from "./embed.ts";
import { CONTENT_TYPES, type SerializerName } from "./serializers.ts";
import { parsePyDate } from "./time.ts";

/**
 * The fields checked, as {@link checkTaskFields} reads them.
 *
 * @example
 * ```ts
 * import type { TaskFields } from "./task_fields.ts";
 * const fields: TaskFields = { countdown: 10, queue: "math" };
 * ```
 */
export interface TaskFields {
  /** Task id, when the caller gives one. */
  taskId?: string;
  /** Queue name. */
  queue?: string | null;
  /** Exchange name. */
  exchange?: string | null;
  /** Routing key. */
  routingKey?: string | null;
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
  ignoreResult?: boolean | null;
  /** Extra headers. */
  headers?: Readonly<Record<string, unknown>>;
  /** Body serializer. */
  serializer?: SerializerName;
  /** Body compression. */
  compression?: CompressionName | null;
}

/**
 * A value as an error message shows it: strings quoted, `10n` for a
 * bigint (each cut to its first 100 characters and `…`), the kind of an
 * object or array (not its contents).
 *
 * @example
 * ```ts
 * import { describeValue } from "./task_fields.ts";
 * describeValue("5"); // '"5"'
 * describeValue(10n); // "10n"
 * describeValue([1]); // "an array"
 * ```
 *
 * @param v any value
 * @returns its short description
 */
export function describeValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(bounded(v));
  if (typeof v === "bigint") return `${bounded(String(v))}n`;
  if (v instanceof Date) return Number.isFinite(v.getTime()) ? v.toISOString() : "an invalid Date";
  if (Array.isArray(v)) return "an array";
  return v === null ? "null" : typeof v === "object" ? "an object" : String(v);
}

/** The characters of a string or integer {@link describeValue} shows; longer ones end in `…`. */
const DESCRIBED_CHARS = 100;

function bounded(s: string): string {
  return s.length > DESCRIBED_CHARS ? `${s.slice(0, DESCRIBED_CHARS)}…` : s;
}

/**
 * A rule for a field's value: whether a value keeps it, and what the value must be (for messages).
 *
 * @example
 * ```ts
 * import type { FieldRule } from "./task_fields.ts";
 * const priority: FieldRule = {
 *   ok: (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255,
 *   wanted: "an integer from 0 to 255",
 * };
 * ```
 */
export interface FieldRule {
  /** Whether `v` keeps the rule. */
  ok(v: unknown): boolean;
  /** What the value must be, e.g. `"an integer from 0 to 255"`. */
  wanted: string;
}

/**
 * The fields a task's options (`app.task(name, options, ...)`) and a call's
 * options both carry under one rule, shared by {@link checkTaskFields} and
 * the task option checks. The others differ on purpose: a task's `queue`
 * must name one (a call's may be `null`), and a task's time limits must be
 * above 0 (a call's 0 means none).
 *
 * @example
 * ```ts
 * import { SHARED_FIELD_RULES } from "./task_fields.ts";
 * SHARED_FIELD_RULES.priority.ok(300); // false
 * SHARED_FIELD_RULES.priority.wanted; // "an integer from 0 to 255"
 * ```
 */
export const SHARED_FIELD_RULES: Readonly<
  Record<"priority" | "serializer" | "ignoreResult", FieldRule>
> = {
  priority: {
    ok: (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255,
    wanted: "an integer from 0 to 255",
  },
  serializer: {
    ok: (v) => typeof v === "string" && Object.hasOwn(CONTENT_TYPES, v),
    wanted: '"json" or "msgpack"',
  },
  ignoreResult: { ok: (v) => typeof v === "boolean", wanted: "true or false" },
};

/** Throw when a present field breaks its shared rule: a RangeError for a priority out of range. */
function shared(v: unknown, field: keyof typeof SHARED_FIELD_RULES, task: string): void {
  if (v === null || v === undefined) return;
  const rule = SHARED_FIELD_RULES[field];
  if (rule.ok(v)) return;
  const Err = field === "priority" && Number.isInteger(v) ? RangeError : TypeError;
  throw new Err(`${field} of "${task}" must be ${rule.wanted}, got ${describeValue(v)}`);
}

function seconds(v: unknown, field: string, task: string): void {
  if (v === null || v === undefined) return;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new TypeError(
      `${field} of "${task}" must be a finite number of seconds, got ${describeValue(v)}`,
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
        `8601 string such as "2030-01-01T12:00:00+00:00", got ${describeValue(v)}`,
    );
  }
}

function limit(v: unknown, field: string, task: string): void {
  if (v === null || v === undefined) return;
  if (typeof v !== "number" || !(v >= 0) || v === Infinity) {
    throw new TypeError(
      `${field} of "${task}" must be a number of seconds >= 0 (leave it out for none), got ${
        describeValue(v)
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
 * checkTaskFields({ countdown: 10, priority: 3 }, "tasks.add");
 * try {
 *   checkTaskFields({ countdown: NaN }, "tasks.add");
 * } catch (err) {
 *   console.log((err as Error).message); // countdown of "tasks.add" must be a finite number of seconds, got NaN
 * }
 * ```
 *
 * @param input the call's options
 * @param task the task name, for the messages
 * @throws {TypeError} for a value of the wrong type (or `NaN`, an invalid Date, a date string that does not parse)
 * @throws {RangeError} for a countdown or expiry of more than about 100 years, or a priority outside 0–255
 */
export function checkTaskFields(input: TaskFields, task: string): void {
  const id = input.taskId;
  if (id !== undefined && (typeof id !== "string" || id === "")) {
    throw new TypeError(
      `the task id of "${task}" must be a non-empty string, got ${describeValue(id)}`,
    );
  }
  for (const key of ["queue", "exchange", "routingKey"] as const) {
    const v = input[key];
    if (v !== undefined && v !== null && typeof v !== "string") {
      throw new TypeError(`${key} of "${task}" must be a string, got ${describeValue(v)}`);
    }
  }
  shared(input.serializer, "serializer", task);
  const { compression } = input;
  if (
    compression !== undefined && compression !== null &&
    !(COMPRESSION_NAMES as readonly unknown[]).includes(compression)
  ) {
    throw new TypeError(
      `compression of "${task}" must be "zlib" (or its alias "gzip"), got ${
        describeValue(compression)
      }`,
    );
  }
  seconds(input.countdown, "countdown", task);
  instant(input.eta, "eta", task, false);
  instant(input.expires, "expires", task, true);
  limit(input.timeLimit, "timeLimit", task);
  limit(input.softTimeLimit, "softTimeLimit", task);
  shared(input.priority, "priority", task);
  if (input.shadow !== undefined && input.shadow !== null && typeof input.shadow !== "string") {
    throw new TypeError(`shadow of "${task}" must be a string, got ${describeValue(input.shadow)}`);
  }
  shared(input.ignoreResult, "ignoreResult", task);
  const h = input.headers;
  if (h !== undefined && h !== null && (typeof h !== "object" || Array.isArray(h))) {
    throw new TypeError(`headers of "${task}" must be an object, got ${describeValue(h)}`);
  }
}
