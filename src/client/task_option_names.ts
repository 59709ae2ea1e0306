/**
 * Refusal of task options (`app.task(name, options, handler)`,
 * `taskAnnotations`) that name no option or have a value of the wrong kind:
 * a typo (`bnd`) or Celery's snake_case name (`time_limit`) would otherwise be
 * ignored — the handler called without its context, the task run without its
 * time limit — and `timeLimit: "5"` found out only when a worker ran it.
 *
 * @module
 */

import { describeValue, type FieldRule, SHARED_FIELD_RULES } from "../protocol/task_fields.ts";
import { closestOptionName } from "./call_option_names.ts";
import type { TaskOptions } from "./task_options.ts";

type Check = (v: unknown) => string | null;

const bool: Check = (v) => typeof v === "boolean" ? null : "true or false";
const fn: Check = (v) => typeof v === "function" ? null : "a function";
const any: Check = () => null;
const positive: Check = (v) =>
  typeof v === "number" && v > 0 && Number.isFinite(v) ? null : "a number of seconds above 0";
const nonNegative: Check = (v) =>
  typeof v === "number" && v >= 0 && Number.isFinite(v) ? null : "a number of seconds, 0 or more";
/** A rule shared with a call's options (see {@link SHARED_FIELD_RULES}). */
const rule = (r: FieldRule): Check => (v) => r.ok(v) ? null : r.wanted;

/** Every task option and what its value may be, typed against {@link TaskOptions}. */
const OPTIONS: Readonly<Record<keyof TaskOptions, Check>> = {
  bind: bool,
  params: (v) =>
    Array.isArray(v) && v.every((p) => typeof p === "string") ? null : "a list of names",
  typing: bool,
  queue: (v) => typeof v === "string" && v !== "" ? null : "a queue name",
  priority: rule(SHARED_FIELD_RULES.priority),
  ignoreResult: rule(SHARED_FIELD_RULES.ignoreResult),
  storeErrorsEvenIfIgnored: bool,
  trackStarted: bool,
  acksLate: bool,
  serializer: rule(SHARED_FIELD_RULES.serializer),
  timeLimit: positive,
  softTimeLimit: positive,
  rejectOnWorkerLost: bool,
  permissions: any,
  maxRetries: (v) =>
    v === null || (Number.isInteger(v) && (v as number) >= 0)
      ? null
      : "a whole number, 0 or more, or null (retry forever)",
  defaultRetryDelay: nonNegative,
  autoretryFor: (v) =>
    typeof v === "function" || Array.isArray(v) ? null : "a list of error classes or a predicate",
  retryKwargs: (v) => typeof v === "object" && v !== null ? null : "an object",
  retryBackoff: (v) =>
    typeof v === "boolean" || (typeof v === "number" && v >= 0 && Number.isFinite(v))
      ? null
      : "true, false or a number of seconds",
  retryBackoffMax: nonNegative,
  retryJitter: bool,
  rateLimit: any,
  onSuccess: fn,
  onFailure: fn,
  onRetry: fn,
  afterReturn: fn,
};
const NAMES = Object.keys(OPTIONS) as (keyof TaskOptions)[];

/**
 * Throw when task options are not an object, name something that is no
 * task option (naming the closest one), or give an option a value of the
 * wrong kind. `undefined` values are left out, as if not given.
 *
 * @example
 * ```ts
 * checkTaskOptions({ time_limit: 5 }, 'options of task "tasks.add"');
 * // TypeError: options of task "tasks.add" have no option "time_limit" (did you mean "timeLimit"?) ...
 * ```
 *
 * @param options the options as given
 * @param where whose options, for the message
 * @throws {TypeError} naming the option and what to write instead
 */
export function checkTaskOptions(options: unknown, where: string): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(
      `${where} must be an object, e.g. { bind: true, timeLimit: 30 }; got ${
        describeValue(options)
      }`,
    );
  }
  for (const [key, value] of Object.entries(options)) {
    if (!Object.hasOwn(OPTIONS, key)) {
      const guess = closestOptionName(key, NAMES);
      throw new TypeError(
        `${where} have no option "${key}"${
          guess ? ` (did you mean "${guess}"?)` : ""
        }: the options are ${NAMES.join(", ")}`,
      );
    }
    const wanted = value === undefined ? null : OPTIONS[key as keyof TaskOptions](value);
    if (wanted) {
      throw new TypeError(`${where}: ${key} must be ${wanted}, got ${describeValue(value)}`);
    }
  }
}
