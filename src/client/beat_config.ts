/**
 * The periodic-task schedule an app declares (Celery's `beat_schedule`):
 * plain, JSON-serialisable data. The beat scheduler (`src/beat/`) evaluates
 * it; the app only carries it.
 *
 * @module
 */

import type { ApplyOptions } from "./task_options.ts";

/**
 * A crontab schedule in Celery's five fields, each a cron field string
 * (`*`, `5`, `1-5`, `*\/15`, `mon-fri`, comma lists). Build one with
 * `crontab(...)`, which validates it.
 *
 * @example The data behind `crontab({ minute: 0, hour: 3 })`
 * ```ts
 * import type { CrontabSchedule } from "@celeriac/celeriac";
 * const nightly: CrontabSchedule = {
 *   type: "crontab",
 *   minute: "0",
 *   hour: "3",
 *   dayOfWeek: "*",
 *   dayOfMonth: "*",
 *   monthOfYear: "*",
 * };
 * ```
 */
export interface CrontabSchedule {
  /** Always `"crontab"`. */
  readonly type: "crontab";
  /** Minutes 0-59. */
  readonly minute: string;
  /** Hours 0-23. */
  readonly hour: string;
  /** Days of the week 0-6, Sunday = 0, or names (`sun`…`sat`). */
  readonly dayOfWeek: string;
  /** Days of the month 1-31. */
  readonly dayOfMonth: string;
  /** Months 1-12, or names (`jan`…`dec`). */
  readonly monthOfYear: string;
}

/**
 * A one-off schedule: run once at (or, if beat was down then, once after)
 * an instant. Build one with `at(...)`.
 *
 * @example
 * ```ts
 * import type { AtSchedule } from "@celeriac/celeriac";
 * const newYear: AtSchedule = { type: "at", at: "2027-01-01T00:00:00.000Z" };
 * ```
 */
export interface AtSchedule {
  /** Always `"at"`. */
  readonly type: "at";
  /** The instant, as an ISO 8601 string with an offset. */
  readonly at: string;
}

/**
 * When an entry runs: a number of seconds (an interval), an interval string
 * (`"10s"`, `"5m"`, `"1h"`, `"1d"`, `"500ms"`), a 5-field cron string
 * (`"0 3 * * *"`), a {@link CrontabSchedule} or an {@link AtSchedule}.
 *
 * @example Every form
 * ```ts
 * import { at, crontab, type ScheduleSpec } from "@celeriac/celeriac";
 * const forms: ScheduleSpec[] = [
 *   10,
 *   "5m",
 *   "*\/15 * * * *",
 *   crontab({ minute: 0, hour: 3, dayOfWeek: "mon-fri" }),
 *   at(new Date("2027-01-01T00:00:00Z")),
 * ];
 * ```
 */
export type ScheduleSpec = number | string | CrontabSchedule | AtSchedule;

/**
 * Call options of a periodic task (Celery's entry `options`).
 *
 * @example
 * ```ts
 * import type { BeatEntryOptions } from "@celeriac/celeriac";
 * const options: BeatEntryOptions = { queue: "reports", expires: 30, priority: 3 };
 * ```
 */
export type BeatEntryOptions = Pick<
  ApplyOptions,
  | "queue"
  | "exchange"
  | "routingKey"
  | "priority"
  | "expires"
  | "headers"
  | "countdown"
  | "ignoreResult"
  | "serializer"
  | "shadow"
  | "timeLimit"
  | "softTimeLimit"
>;

/**
 * One entry of the schedule (Celery's `beat_schedule` value).
 *
 * @example
 * ```ts
 * import { type BeatEntry, crontab } from "@celeriac/celeriac";
 * const cleanup: BeatEntry = {
 *   task: "tasks.cleanup",
 *   schedule: crontab({ minute: 0, hour: 3 }),
 *   kwargs: { days: 30 },
 *   options: { queue: "maintenance", expires: 3600 },
 * };
 * ```
 */
export interface BeatEntry<A extends readonly unknown[] = unknown[]> {
  /** Task name: a local task or one served elsewhere (Python). */
  task: string;
  /** When it runs. */
  schedule: ScheduleSpec;
  /** Positional arguments; default none. */
  args?: A;
  /** Keyword arguments; default none. */
  kwargs?: Record<string, unknown>;
  /** Call options (queue, expires, priority, headers, ...). */
  options?: BeatEntryOptions;
}
