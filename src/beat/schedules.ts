/**
 * Pure schedule arithmetic: when an entry is next due, given its last run,
 * and what its last run becomes when it is sent. No clock, no I/O: the
 * caller passes `now` (a fake clock in tests).
 *
 * @module
 */

import type { Cron } from "croner";
import type { CrontabSchedule, ScheduleSpec } from "../client/beat_config.ts";
import { cronJob, crontab } from "./crontab.ts";
import { BeatEntryError } from "./errors.ts";

/**
 * What the store keeps per entry: when it last ran (epoch ms) and how many
 * times it was sent. A new entry starts with `lastRunAt` = the time a beat
 * first saw it (Celery's rule: an interval entry first runs one interval
 * after start-up).
 *
 * @example
 * ```ts
 * import type { RunState } from "@celeriac/celeriac/protocol";
 * const fresh: RunState = { lastRunAt: Date.now(), totalRunCount: 0 };
 * ```
 */
export interface RunState {
  /** Epoch milliseconds of the last run (or of first sight, before any run). */
  lastRunAt: number;
  /** Runs sent so far. */
  totalRunCount: number;
}

/**
 * A compiled schedule.
 *
 * @example Asking when an entry is due
 * ```ts
 * import { compileSchedule } from "@celeriac/celeriac/protocol";
 * const every10 = compileSchedule(10, "UTC");
 * every10.nextRunAt({ lastRunAt: 0, totalRunCount: 0 }); // 10000
 * ```
 */
export interface Schedule {
  /** `interval`, `crontab` or `at`. */
  readonly kind: "interval" | "crontab" | "at";
  /** Human-readable form, e.g. `every 10s`, `crontab 0 3 * * * (Europe/Berlin)`. */
  readonly description: string;
  /** Epoch ms the entry is next due, or `null` when it will never run again. */
  nextRunAt(state: RunState): number | null;
  /**
   * The state after sending a run that was due at `due`, at `now`. Several
   * missed runs collapse into this one: the next is computed from `now`.
   */
  afterRun(state: RunState, due: number, now: number): RunState;
}

/** The shortest interval an entry may have, in milliseconds. */
const MIN_INTERVAL_MS = 1;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parse an interval: seconds as a number, or a string `"500ms"`, `"10s"`,
 * `"5m"`, `"1h"`, `"1d"` (a bare number string is seconds).
 *
 * @example
 * ```ts
 * import { parseInterval } from "@celeriac/celeriac/protocol";
 * parseInterval("5m"); // 300000
 * parseInterval(2.5); // 2500
 * ```
 *
 * @param value the interval
 * @returns milliseconds, at least 1
 * @throws {BeatEntryError} for intervals under 1 ms (zero, negative) or unreadable
 */
export function parseInterval(value: number | string): number {
  let ms: number;
  if (typeof value === "number") {
    ms = value * 1000;
  } else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
    if (!m) {
      throw new BeatEntryError(
        null,
        "schedule",
        `"${value}" is neither an interval ("10s", "5m", "1h", "1d", "500ms") nor a ` +
          `5-field cron string ("*/5 * * * *")`,
      );
    }
    ms = Number(m[1]) * UNITS[(m[2] ?? "s").toLowerCase()];
  }
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new BeatEntryError(
      null,
      "schedule",
      `an interval must be a positive number of seconds, got ${JSON.stringify(value)}`,
    );
  }
  if (ms < MIN_INTERVAL_MS) {
    // Beat would send back to back, as fast as the store answers (455 sends in 2 s at 0.1 ms).
    throw new BeatEntryError(
      null,
      "schedule",
      `an interval must be at least 1 ms (0.001 s, "1ms"), got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

function formatMs(ms: number): string {
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]]) {
    if (ms % (size as number) === 0) return `${ms / (size as number)}${unit}`;
  }
  return `${ms}ms`;
}

function intervalSchedule(every: number): Schedule {
  return {
    kind: "interval",
    description: `every ${formatMs(every)}`,
    nextRunAt: (s) => s.lastRunAt + every,
    // On time (less than one interval late): keep the grid, no drift.
    // Later than that: one catch-up run now, and the grid restarts from now.
    afterRun: (s, due, now) => ({
      lastRunAt: now - due < every ? due : now,
      totalRunCount: s.totalRunCount + 1,
    }),
  };
}

function crontabSchedule(c: CrontabSchedule, timezone: string): Schedule {
  let job: Cron;
  try {
    job = cronJob(c, timezone);
    job.nextRun(new Date(0));
  } catch (err) {
    throw new BeatEntryError(null, "timezone", `"${timezone}": ${(err as Error).message}`);
  }
  const fields = `${c.minute} ${c.hour} ${c.dayOfMonth} ${c.monthOfYear} ${c.dayOfWeek}`;
  return {
    kind: "crontab",
    description: `crontab ${fields} (${timezone})`,
    nextRunAt: (s) => job.nextRun(new Date(s.lastRunAt))?.getTime() ?? null,
    afterRun: (s, _due, now) => ({ lastRunAt: now, totalRunCount: s.totalRunCount + 1 }),
  };
}

function atSchedule(iso: string): Schedule {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) {
    throw new BeatEntryError(null, "schedule.at", `${JSON.stringify(iso)} is not an ISO time`);
  }
  return {
    kind: "at",
    description: `at ${new Date(t).toISOString()}`,
    // Sent once: done when its last run came at or after the instant. An entry
    // given a later instant under the same name is a new one-off, sent again.
    nextRunAt: (s) => s.totalRunCount > 0 && s.lastRunAt >= t ? null : t,
    afterRun: (s, _due, now) => ({ lastRunAt: now, totalRunCount: s.totalRunCount + 1 }),
  };
}

/**
 * Compile a schedule given in any form of {@link ScheduleSpec}, in a time zone.
 *
 * @example
 * ```ts
 * import { crontab } from "@celeriac/celeriac";
 * import { compileSchedule } from "@celeriac/celeriac/protocol";
 * const nightly = compileSchedule(crontab({ minute: 0, hour: 3 }), "Europe/Berlin");
 * new Date(nightly.nextRunAt({ lastRunAt: Date.UTC(2026, 0, 1), totalRunCount: 0 })!)
 *   .toISOString(); // "2026-01-01T02:00:00.000Z"
 * ```
 *
 * @param spec the schedule
 * @param timezone IANA time zone crontab schedules are evaluated in
 * @returns the compiled schedule
 * @throws {BeatEntryError} for an invalid schedule or time zone
 */
export function compileSchedule(spec: ScheduleSpec, timezone: string): Schedule {
  if (typeof spec === "number") return intervalSchedule(parseInterval(spec));
  if (typeof spec === "string") {
    return spec.trim().includes(" ")
      ? crontabSchedule(crontab(spec), timezone)
      : intervalSchedule(parseInterval(spec));
  }
  if (typeof spec === "object" && spec !== null) {
    if (spec.type === "crontab") {
      const { type: _, ...fields } = spec;
      return crontabSchedule(crontab(fields), timezone);
    }
    if (spec.type === "at") return atSchedule(spec.at);
  }
  throw new BeatEntryError(
    null,
    "schedule",
    `expected seconds, an interval string, a cron string, crontab(...) or at(...), got ${
      JSON.stringify(spec)
    }`,
  );
}
