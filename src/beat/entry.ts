/**
 * Checking a schedule entry and compiling its schedule (pure).
 *
 * @module
 */

import type { BeatEntry, BeatEntryOptions, ScheduleSpec } from "../client/beat_config.ts";
import { closestOptionName } from "../client/call_option_names.ts";
import type { Task } from "../client/task.ts";
import { checkTaskFields } from "../protocol/task_fields.ts";
import { BeatEntryError } from "./errors.ts";
import { compileSchedule, type Schedule } from "./schedules.ts";

/**
 * A checked entry with its compiled schedule.
 *
 * @example
 * ```ts
 * import { compileEntry, type ScheduledEntry } from "@celeriac/celeriac/protocol";
 * const e: ScheduledEntry = compileEntry("tick", { task: "tasks.tick", schedule: "10s" }, "UTC");
 * e.schedule.description; // "every 10s"
 * ```
 */
export interface ScheduledEntry {
  /** Entry name. */
  readonly name: string;
  /** Task name. */
  readonly task: string;
  /** Positional arguments. */
  readonly args: readonly unknown[];
  /** Keyword arguments. */
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** Call options. */
  readonly options: Readonly<BeatEntryOptions>;
  /** The compiled schedule. */
  readonly schedule: Schedule;
  /** The entry as given (what the store keeps for run-time entries). */
  readonly source: BeatEntry;
}

/** Every option of an entry, typed against {@link BeatEntryOptions} so that none can be left out. */
const OPTIONS: Readonly<Record<keyof BeatEntryOptions, true>> = {
  queue: true,
  exchange: true,
  routingKey: true,
  priority: true,
  expires: true,
  headers: true,
  countdown: true,
  ignoreResult: true,
  serializer: true,
  shadow: true,
  timeLimit: true,
  softTimeLimit: true,
};
const OPTION_NAMES = Object.keys(OPTIONS);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkOptions(name: string, task: string, options: unknown): BeatEntryOptions {
  if (options === undefined) return {};
  if (!isPlainObject(options)) {
    throw new BeatEntryError(name, "options", 'expected an object like { queue: "reports" }');
  }
  for (const [key, value] of Object.entries(options)) {
    if (!Object.hasOwn(OPTIONS, key)) {
      const guess = closestOptionName(key, OPTION_NAMES);
      throw new BeatEntryError(
        name,
        `options.${key}`,
        `unknown option${guess ? ` (did you mean "${guess}"?)` : ""}: the options are ${
          OPTION_NAMES.join(", ")
        }`,
      );
    }
    if (value === undefined) continue;
    const stringish = ["queue", "exchange", "routingKey", "shadow", "serializer"].includes(key);
    if (stringish && (typeof value !== "string" || value === "")) {
      throw new BeatEntryError(name, `options.${key}`, "expected a non-empty string");
    }
    try {
      // What the send would refuse at every run (NaN, "soon", priority 300, ...), refused now.
      checkTaskFields({ [key]: value }, task);
    } catch (err) {
      throw new BeatEntryError(name, `options.${key}`, (err as Error).message);
    }
    if (key === "countdown" && (value as number) < 0) {
      throw new BeatEntryError(name, "options.countdown", "expected a number of seconds >= 0");
    }
    if (key === "expires" && typeof value === "number" && value <= 0) {
      throw new BeatEntryError(name, "options.expires", "expected seconds > 0 or a time");
    }
  }
  return options as BeatEntryOptions;
}

/**
 * Check an entry and compile its schedule.
 *
 * @example
 * ```ts
 * import { crontab } from "@celeriac/celeriac";
 * import { compileEntry } from "@celeriac/celeriac/protocol";
 * const entry = compileEntry(
 *   "cleanup",
 *   { task: "tasks.cleanup", schedule: crontab({ minute: 0, hour: 3 }), kwargs: { days: 30 } },
 *   "Europe/Berlin",
 * );
 * entry.schedule.kind; // "crontab"
 * ```
 *
 * @param name the entry name
 * @param entry the entry
 * @param timezone the app's time zone
 * @returns the checked entry
 * @throws {BeatEntryError} naming the entry and the field at fault
 */
export function compileEntry(name: string, entry: BeatEntry, timezone: string): ScheduledEntry {
  if (typeof name !== "string" || name === "") {
    throw new BeatEntryError(null, "name", "an entry needs a non-empty name");
  }
  if (!isPlainObject(entry)) {
    throw new BeatEntryError(
      name,
      "entry",
      "expected { task, schedule, args?, kwargs?, options? }",
    );
  }
  if (typeof entry.task !== "string" || entry.task === "") {
    throw new BeatEntryError(name, "task", 'expected a task name such as "tasks.cleanup"');
  }
  if (entry.args !== undefined && !Array.isArray(entry.args)) {
    throw new BeatEntryError(name, "args", "expected an array of positional arguments");
  }
  if (entry.kwargs !== undefined && !isPlainObject(entry.kwargs)) {
    throw new BeatEntryError(name, "kwargs", "expected an object of keyword arguments");
  }
  const options = checkOptions(name, entry.task, entry.options);
  let schedule: Schedule;
  try {
    schedule = compileSchedule(entry.schedule, timezone);
  } catch (err) {
    if (err instanceof BeatEntryError) {
      const field = err.field.startsWith("crontab")
        ? `schedule (${err.field})`
        : err.field.startsWith("schedule")
        ? err.field
        : err.field === "timezone"
        ? "timezone"
        : `schedule (${err.field})`;
      throw new BeatEntryError(name, field, err.message.replace(/^[^:]*: /, ""));
    }
    throw err;
  }
  return {
    name,
    task: entry.task,
    args: entry.args ?? [],
    kwargs: entry.kwargs ?? {},
    options,
    schedule,
    source: entry,
  };
}

/**
 * A typed entry for a local task: `args` are checked against the task's
 * parameters. The result goes in `beatSchedule` (after the task is defined,
 * through `app.configure`) or to `PeriodicTasks.add`.
 *
 * @example
 * ```ts
 * import { beatEntry, Celery, crontab } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const report = app.task("tasks.report", (year: number, format: string) => `${year}.${format}`);
 * app.configure({
 *   beatSchedule: {
 *     nightly: beatEntry(report, crontab({ minute: 0, hour: 3 }), { args: [2026, "pdf"] }),
 *     "py-cleanup": { task: "py.cleanup", schedule: "1h" }, // a Python task, by name
 *   },
 * });
 * ```
 *
 * @param task the task handle (or a name)
 * @param schedule when it runs
 * @param rest arguments and call options
 * @returns a plain entry
 */
export function beatEntry<A extends unknown[]>(
  task: Task<A, unknown> | string,
  schedule: ScheduleSpec,
  rest: { args?: NoInfer<A>; kwargs?: Record<string, unknown>; options?: BeatEntryOptions } = {},
): BeatEntry {
  return { task: typeof task === "string" ? task : task.name, schedule, ...rest };
}
