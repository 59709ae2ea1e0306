/**
 * Building schedules: `crontab(...)` in Celery's fields or as a 5-field cron
 * string, and `at(...)` for one-off runs. Cron parsing is croner's.
 *
 * @module
 */

import { Cron } from "croner";
import type { AtSchedule, CrontabSchedule } from "../client/beat_config.ts";
import { BeatEntryError } from "./errors.ts";

/** A crontab field: a number, a list of numbers, or a cron field string. */
export type CrontabField = number | readonly number[] | string;

/**
 * Celery's crontab fields; each defaults to `"*"`.
 *
 * @example Weekdays at 07:30
 * ```ts
 * import { crontab, type CrontabFields } from "@celeriac/celeriac";
 * const fields: CrontabFields = { minute: 30, hour: 7, dayOfWeek: "mon-fri" };
 * crontab(fields);
 * ```
 */
export interface CrontabFields {
  /** Minutes 0-59 [`minute`]. */
  minute?: CrontabField;
  /** Hours 0-23 [`hour`]. */
  hour?: CrontabField;
  /** Days of the week 0-6, Sunday = 0 (not 7, as in Celery), or `sun`…`sat` [`day_of_week`]. */
  dayOfWeek?: CrontabField;
  /** Days of the month 1-31 [`day_of_month`]. */
  dayOfMonth?: CrontabField;
  /** Months 1-12 [`month_of_year`]; names (`jan`) are refused, as Celery 5.2.6 refuses them. */
  monthOfYear?: CrontabField;
}

const FIELDS = ["minute", "hour", "dayOfMonth", "monthOfYear", "dayOfWeek"] as const;

function fieldText(name: string, value: CrontabField | undefined): string {
  if (value === undefined) return "*";
  if (typeof value === "number") {
    if (!Number.isInteger(value)) {
      throw new BeatEntryError(null, `crontab ${name}`, `${value} is not a whole number`);
    }
    return String(value);
  }
  if (Array.isArray(value)) {
    if (value.length === 0) throw new BeatEntryError(null, `crontab ${name}`, "an empty list");
    return value.map((v) => fieldText(name, v)).join(",");
  }
  if (typeof value !== "string" || value.trim() === "") {
    throw new BeatEntryError(
      null,
      `crontab ${name}`,
      `expected a number, a list or a cron field like "*/15", got ${JSON.stringify(value)}`,
    );
  }
  return value.trim().toLowerCase();
}

/**
 * The croner pattern (seconds first) of a crontab schedule.
 *
 * @example
 * ```ts
 * import { crontab } from "@celeriac/celeriac";
 * import { cronPattern } from "@celeriac/celeriac/protocol";
 * cronPattern(crontab({ minute: 0, hour: 3 })); // "0 0 3 * * *"
 * ```
 *
 * @param c the schedule
 * @returns a 6-field pattern
 */
export function cronPattern(c: CrontabSchedule): string {
  const f = (name: Field) => valueList(name, celeryForms(name, c[name]));
  return `0 ${f("minute")} ${f("hour")} ${f("dayOfMonth")} ${f("monthOfYear")} ${f("dayOfWeek")}`;
}

type Field = (typeof FIELDS)[number];

/** Each field's first value and how many values it has, as Celery's crontab_parser. */
const BOUNDS: Record<Field, readonly [min: number, count: number]> = {
  minute: [0, 60],
  hour: [0, 24],
  dayOfMonth: [1, 31],
  monthOfYear: [1, 12],
  dayOfWeek: [0, 7],
};
/** Each field's values, as an error message gives them. */
const RANGES: Record<Field, string> = {
  minute: "0-59",
  hour: "0-23",
  dayOfMonth: "1-31",
  monthOfYear: "1-12",
  dayOfWeek: "0-6 or sun-sat",
};
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/** A field's value as a number (a day or month name in its own field), or null. */
function valueOf(field: Field, word: string): number | null {
  if (/^\d+$/.test(word)) return Number(word);
  if (field === "dayOfWeek" && DAYS.includes(word)) return DAYS.indexOf(word);
  if (field === "monthOfYear" && MONTHS.includes(word)) return MONTHS.indexOf(word) + 1;
  return null;
}

/**
 * A field in croner's syntax, with the forms Celery's crontab takes that
 * croner does not: a day's full name (`sunday`; Celery reads the first three
 * letters) and a range that wraps past the field's end (`22-2` for hours
 * 22, 23, 0, 1, 2; `fri-mon`; `22-2/2`), written out as the list Celery makes
 * of it. Anything else is left for croner to accept or refuse.
 */
function celeryForms(field: Field, text: string): string {
  return text.split(",").map((part) => {
    const p = field === "dayOfWeek"
      ? part.replace(/[a-z]+/g, (w) => DAYS.includes(w.slice(0, 3)) ? w.slice(0, 3) : w)
      : part;
    const m = /^(\w+)-(\w+)(?:\/(\d+))?$/.exec(p);
    if (!m) return p;
    const [min, count] = BOUNDS[field];
    const from = valueOf(field, m[1]);
    const to = valueOf(field, m[2]);
    const step = m[3] === undefined ? 1 : Number(m[3]);
    const inField = (n: number | null): n is number => n !== null && n >= min && n < min + count;
    if (!inField(from) || !inField(to) || to >= from || step < 1) return p;
    const values: number[] = [];
    for (let n = from; n < min + count; n++) values.push(n);
    for (let n = min; n <= to; n++) values.push(n);
    return values.filter((_, i) => i % step === 0).join(",");
  }).join(",");
}

/**
 * A minute or hour field written out as the list of its values (`*\/20` is
 * `0,20,40`), as Celery's crontab expands every field to a set; other fields,
 * and a part croner must judge (`75`, `a-b` backwards), are left as they are.
 * croner then counts every minute and hour as a fixed time on DST days,
 * whatever its spelling, as Celery does.
 */
function valueList(field: Field, text: string): string {
  if (field !== "minute" && field !== "hour") return text;
  const [min, count] = BOUNDS[field];
  const max = min + count - 1;
  return text.split(",").map((part) => {
    const m = /^(?:(\*)|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) return part;
    const from = m[1] ? min : Number(m[2]);
    const to = m[1] || (m[3] === undefined && m[4] !== undefined) ? max : Number(m[3] ?? m[2]);
    const step = m[4] === undefined ? 1 : Number(m[4]);
    if (from < min || to > max || from > to || step < 1) return part;
    const values: number[] = [];
    for (let n = from; n <= to; n += step) values.push(n);
    return values.join(",");
  }).join(",");
}

/**
 * A croner job (never started: used only to compute run times) for a
 * crontab schedule in a time zone. Day of month and day of week must BOTH
 * match, as in Celery (classic cron ORs them). Every minute and hour is a
 * fixed wall-clock time on DST days, however it is spelled (`30 2`, `30 2,14`,
 * `30 1-3`, `30 0-2/2`, `*\/15 *`), as in Celery 5.2.6, which expands each
 * field to a set of values: times that do not exist run once at the end of
 * the gap, times that happen twice run the first time only.
 *
 * @example
 * ```ts
 * import { crontab, cronJob } from "./crontab.ts";
 * cronJob(crontab("30 2 * * *"), "Europe/Berlin").nextRun(new Date("2026-03-29T00:00:00Z"));
 * // 2026-03-29T01:00:00Z: 02:30 does not exist that night, it runs at 03:00 CEST once
 * ```
 *
 * @param c the schedule
 * @param timezone IANA time zone
 * @returns the job
 */
export function cronJob(c: CrontabSchedule, timezone: string): Cron {
  return new Cron(cronPattern(c), {
    timezone,
    domAndDow: true,
    mode: "6-part",
    paused: true,
    fixedTimeRule: "no-wildcard",
  });
}

/**
 * A crontab schedule, as Celery's `crontab(minute=..., hour=..., ...)`, or
 * from a 5-field cron string (`minute hour day-of-month month day-of-week`).
 * Day of month and day of week must both match (Celery's rule). As in Celery,
 * a range may wrap past the field's end (`hour: "22-2"`, `dayOfWeek:
 * "fri-mon"`) and days may be named in full (`"sunday"`).
 *
 * @example
 * ```ts
 * import { crontab } from "@celeriac/celeriac";
 * crontab({ minute: 0, hour: 3 }); // 03:00 every day
 * crontab({ minute: "*\/15" }); // every quarter hour
 * crontab({ minute: 0, hour: [9, 17], dayOfWeek: "mon-fri" }); // 09:00 and 17:00 on weekdays
 * crontab("0 3 * * *"); // the same as the first, as a cron string
 * crontab({ minute: 0, hour: "22-2" }); // on the hour from 22:00 to 02:00
 * ```
 *
 * @param fields Celery's fields (each default `"*"`), or a 5-field cron string
 * @returns the schedule, as plain data
 * @throws {BeatEntryError} naming the field that is invalid, or when no date
 *   matches the days (`dayOfMonth: 31, monthOfYear: 2`)
 */
export function crontab(fields: CrontabFields | string = {}): CrontabSchedule {
  let parts: Record<(typeof FIELDS)[number], string>;
  if (typeof fields === "string") {
    const words = fields.trim().split(/\s+/);
    if (words.length !== 5) {
      throw new BeatEntryError(
        null,
        "crontab",
        `"${fields}" has ${words.length} field(s): a cron string has 5 ` +
          `(minute hour day-of-month month day-of-week), e.g. "0 3 * * *"`,
      );
    }
    parts = Object.fromEntries(FIELDS.map((f, i) => [f, words[i].toLowerCase()])) as typeof parts;
  } else if (typeof fields === "object" && fields !== null) {
    for (const key of Object.keys(fields)) {
      if (!(FIELDS as readonly string[]).includes(key)) {
        throw new BeatEntryError(
          null,
          `crontab ${key}`,
          `unknown field: use minute, hour, dayOfWeek, dayOfMonth, monthOfYear`,
        );
      }
    }
    parts = Object.fromEntries(FIELDS.map((f) => [f, fieldText(f, fields[f])])) as typeof parts;
  } else {
    throw new BeatEntryError(null, "crontab", "expected an object of fields or a cron string");
  }
  const schedule: CrontabSchedule = { type: "crontab", ...parts };
  for (const f of FIELDS) refuseNonCelery(f, parts[f]);
  refuseSeven(parts.dayOfWeek);
  for (const f of FIELDS) {
    const alone = { ...ANY, [f]: parts[f] };
    try {
      cronJob(alone, "UTC");
    } catch (err) {
      // croner counts days and months from 0 in its "Invalid value" messages ("month: 12" for
      // 13): the field's range says it instead. Its other messages (a bad step) are kept.
      const why = (err as Error).message;
      throw new BeatEntryError(
        null,
        `crontab ${f}`,
        `"${parts[f]}" is not a valid cron field: ${f} takes ${RANGES[f]}${
          /Invalid value for/.test(why) ? "" : ` (${why})`
        }`,
      );
    }
  }
  if (cronJob(schedule, "UTC").nextRun(new Date(0)) === null) {
    // Only the days can conflict (day 31 of February); Celery fails at every tick instead.
    const { dayOfMonth: dom, monthOfYear: month, dayOfWeek: dow } = parts;
    throw new BeatEntryError(
      null,
      "crontab",
      `never matches: no day ${dom} in month ${month}${
        dow === "*" ? "" : ` on day of week ${dow}`
      }, so the entry would never run`,
    );
  }
  return Object.freeze(schedule);
}

/**
 * Refuse the cron forms Celery 5.2.6's crontab refuses ("Invalid weekday
 * literal") and croner would take: `L`, `W`, `#`, `?`, a start with a step
 * and no range (`10/15`), and month names. Each part of a list must be `*`,
 * `*\/n`, `a`, `a-b` or `a-b/n`, where `a` and `b` are numbers, or (day of
 * week only) day names.
 */
function refuseNonCelery(field: Field, text: string): void {
  const value = field === "dayOfWeek" ? "(?:\\d+|[a-z]+)" : "\\d+";
  const form = new RegExp(`^(?:\\*(?:/\\d+)?|${value}(?:-${value}(?:/\\d+)?)?)$`);
  const notDay = (w: string) => !DAYS.includes(w.slice(0, 3));
  const bad = text.split(",").find((part) =>
    !form.test(part) || (part.match(/[a-z]+/g) ?? []).some(notDay)
  );
  if (bad === undefined) return;
  throw new BeatEntryError(
    null,
    `crontab ${field}`,
    `"${bad}" is not a form Celery's crontab takes: ${field} takes ${RANGES[field]} as ` +
      `*, */n, a, a-b or a-b/n, in a list if need be (a step needs * or a range: */15, ` +
      `10-59/15; L, W, #, ? and month names are not Celery's)`,
  );
}

/**
 * Refuse day of week 7 (`7`, `"sun-7"`, `"1-7/2"`, `[1, 7]`), which cron and
 * croner take as Sunday: Celery 5.2.6's crontab refuses it ("Invalid end
 * range: 7 > 6").
 */
function refuseSeven(dayOfWeek: string): void {
  const seven = dayOfWeek.split(",").some((part) =>
    part.split("/")[0].split("-").some((end) => /^\d+$/.test(end) && Number(end) === 7)
  );
  if (!seven) return;
  throw new BeatEntryError(
    null,
    "crontab dayOfWeek",
    `"${dayOfWeek}": 7 is not a day of the week, as in Celery's crontab: dayOfWeek takes ` +
      `0-6 or sun-sat with Sunday as 0 or "sun"; write "5-0" for Friday to Sunday, "*" for ` +
      `every day`,
  );
}

const ANY: CrontabSchedule = {
  type: "crontab",
  minute: "*",
  hour: "*",
  dayOfWeek: "*",
  dayOfMonth: "*",
  monthOfYear: "*",
};

/**
 * A one-off schedule: the entry runs once at `when`; if no beat ran then,
 * once as soon as one starts.
 *
 * @example
 * ```ts
 * import { at } from "@celeriac/celeriac";
 * at(new Date("2027-01-01T00:00:00Z")); // { type: "at", at: "2027-01-01T00:00:00.000Z" }
 * at("2027-01-01T09:00:00+01:00");
 * ```
 *
 * @param when a Date, an ISO 8601 string with an offset, or epoch milliseconds
 * @returns the schedule, as plain data
 * @throws {BeatEntryError} when `when` is not a valid time
 */
export function at(when: Date | string | number): AtSchedule {
  const t = when instanceof Date
    ? when.getTime()
    : typeof when === "string"
    ? (/(Z|[+-]\d\d:?\d\d)$/i.test(when) ? Date.parse(when) : NaN)
    : when;
  if (typeof t !== "number" || !Number.isFinite(t)) {
    throw new BeatEntryError(
      null,
      "at",
      `${JSON.stringify(when)} is not a time: give a Date or an ISO string with an offset ` +
        `("2027-01-01T00:00:00Z")`,
    );
  }
  return Object.freeze({ type: "at", at: new Date(t).toISOString() });
}
