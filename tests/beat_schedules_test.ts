/** Pure schedule arithmetic with a fake clock: intervals, crontab, DST, month ends, one-offs. */

import assert from "node:assert/strict";
import {
  at,
  beatEntry,
  BeatEntryError,
  Celery,
  crontab,
  PeriodicTasks,
  type ScheduleSpec,
} from "../mod.ts";
import {
  compileEntry,
  compileSchedule,
  parseInterval,
  resolveConfig,
  type RunState,
  type Schedule,
} from "../protocol.ts";

const MIN = 60_000;

/**
 * Run a schedule against a fake clock that ticks every `stepMs` from `from`
 * to `to` (as a beat loop would); returns the instants it sent at.
 */
function simulate(schedule: Schedule, from: string, to: string, stepMs = MIN): string[] {
  const start = Date.parse(from);
  let state: RunState = { lastRunAt: start, totalRunCount: 0 };
  const sent: string[] = [];
  for (let now = start; now <= Date.parse(to); now += stepMs) {
    const due = schedule.nextRunAt(state);
    if (due !== null && now >= due) {
      sent.push(new Date(now).toISOString());
      state = schedule.afterRun(state, due, now);
    }
  }
  return sent;
}

function sched(spec: ScheduleSpec, tz = "UTC"): Schedule {
  return compileSchedule(spec, tz);
}

Deno.test("schedules: intervals as seconds or strings", () => {
  assert.equal(parseInterval(10), 10_000);
  assert.equal(parseInterval("10s"), 10_000);
  assert.equal(parseInterval("5m"), 300_000);
  assert.equal(parseInterval("1h"), 3_600_000);
  assert.equal(parseInterval("1d"), 86_400_000);
  assert.equal(parseInterval("500ms"), 500);
  assert.equal(parseInterval("2.5"), 2500);
  assert.equal(sched("5m").description, "every 5m");
  assert.equal(sched(1.5).description, "every 1500ms");
});

Deno.test("schedules: an interval first runs one interval after start, then keeps its grid", () => {
  const s = sched(10);
  const sent = simulate(s, "2026-01-01T00:00:00Z", "2026-01-01T00:00:35Z", 1000);
  assert.deepEqual(sent, [
    "2026-01-01T00:00:10.000Z",
    "2026-01-01T00:00:20.000Z",
    "2026-01-01T00:00:30.000Z",
  ]);
  // A late tick (beat busy for 3 s) does not shift the grid.
  const late = s.afterRun({ lastRunAt: 0, totalRunCount: 0 }, 10_000, 13_000);
  assert.equal(late.lastRunAt, 10_000);
  assert.equal(s.nextRunAt(late), 20_000);
});

Deno.test("schedules: missed runs are sent once, never once per missed slot", () => {
  const every = sched("1m");
  const state: RunState = { lastRunAt: 0, totalRunCount: 3 };
  const due = every.nextRunAt(state)!;
  const now = 60 * MIN + 5000; // beat was down for an hour
  assert.ok(now >= due);
  const after = every.afterRun(state, due, now);
  assert.equal(after.totalRunCount, 4);
  assert.equal(
    every.nextRunAt(after),
    now + MIN,
    "the next run is one interval after the catch-up",
  );

  const nightly = sched(crontab({ minute: 0, hour: 3 }));
  const down: RunState = { lastRunAt: Date.parse("2026-01-01T03:00:00Z"), totalRunCount: 1 };
  const back = Date.parse("2026-01-05T12:00:00Z"); // four 03:00 slots missed
  const d = nightly.nextRunAt(down)!;
  assert.equal(new Date(d).toISOString(), "2026-01-02T03:00:00.000Z");
  const caught = nightly.afterRun(down, d, back);
  assert.equal(new Date(nightly.nextRunAt(caught)!).toISOString(), "2026-01-06T03:00:00.000Z");
});

Deno.test("schedules: crontab fields, names, steps, lists; day of month AND day of week", () => {
  const quarter = simulate(
    sched(crontab({ minute: "*/15" })),
    "2026-01-01T00:01:00Z",
    "2026-01-01T01:01:00Z",
  );
  assert.deepEqual(quarter, [
    "2026-01-01T00:15:00.000Z",
    "2026-01-01T00:30:00.000Z",
    "2026-01-01T00:45:00.000Z",
    "2026-01-01T01:00:00.000Z",
  ]);
  const weekdays = sched(crontab({ minute: 0, hour: [9, 17], dayOfWeek: "mon-fri" }));
  const week = simulate(weekdays, "2026-01-02T10:00:00Z", "2026-01-06T00:00:00Z"); // Fri → Tue
  assert.deepEqual(week, [
    "2026-01-02T17:00:00.000Z",
    "2026-01-05T09:00:00.000Z",
    "2026-01-05T17:00:00.000Z",
  ]);
  // Friday the 13th only (Celery ANDs the two day fields; classic cron would OR them).
  const fri13 = sched(crontab({ minute: 0, hour: 12, dayOfMonth: 13, dayOfWeek: 5 }));
  let state: RunState = { lastRunAt: Date.parse("2026-01-01T00:00:00Z"), totalRunCount: 0 };
  const runs: string[] = [];
  for (let i = 0; i < 2; i++) {
    const next = fri13.nextRunAt(state)!;
    runs.push(new Date(next).toISOString());
    state = fri13.afterRun(state, next, next);
  }
  assert.deepEqual(runs, ["2026-02-13T12:00:00.000Z", "2026-03-13T12:00:00.000Z"]);
  // Sunday is 0, as in Celery.
  const sunday = sched(crontab({ minute: 0, hour: 0, dayOfWeek: 0 }));
  assert.equal(
    new Date(sunday.nextRunAt({ lastRunAt: Date.parse("2026-01-01T00:00:00Z"), totalRunCount: 0 })!)
      .toISOString(),
    "2026-01-04T00:00:00.000Z",
  );
  // A 5-field cron string is the same schedule.
  assert.deepEqual(
    crontab("0 9,17 * * mon-fri"),
    crontab({ minute: 0, hour: [9, 17], dayOfWeek: "mon-fri" }),
  );
  assert.equal(sched("*/5 * * * *").kind, "crontab");
});

Deno.test("schedules: Celery's ranges that wrap past the field's end and full day names", () => {
  const from = "2026-01-01T00:00:00Z";
  const next = (c: ReturnType<typeof crontab>, n: number) => {
    const s = sched(c);
    let state: RunState = { lastRunAt: Date.parse(from), totalRunCount: 0 };
    const runs: string[] = [];
    for (let i = 0; i < n; i++) {
      const due = s.nextRunAt(state)!;
      runs.push(new Date(due).toISOString().slice(0, 16));
      state = s.afterRun(state, due, due);
    }
    return runs;
  };
  // The sets Celery 5.2.6's crontab makes of the same fields (2026-01-01 is a Thursday).
  assert.deepEqual(next(crontab({ minute: 0, hour: "22-2" }), 6), [
    "2026-01-01T01:00",
    "2026-01-01T02:00",
    "2026-01-01T22:00",
    "2026-01-01T23:00",
    "2026-01-02T00:00",
    "2026-01-02T01:00",
  ]);
  assert.deepEqual(next(crontab({ minute: 0, hour: "22-2/2" }), 3), [
    "2026-01-01T02:00",
    "2026-01-01T22:00",
    "2026-01-02T00:00",
  ]);
  assert.deepEqual(next(crontab({ minute: 0, hour: 0, dayOfWeek: "fri-mon" }), 4), [
    "2026-01-02T00:00",
    "2026-01-03T00:00",
    "2026-01-04T00:00",
    "2026-01-05T00:00",
  ]);
  assert.deepEqual(
    next(crontab({ minute: 0, hour: 0, dayOfWeek: "friday-monday" }), 4),
    next(crontab({ minute: 0, hour: 0, dayOfWeek: "fri-mon" }), 4),
  );
  assert.deepEqual(next(crontab({ minute: 0, hour: 0, dayOfWeek: "sunday" }), 1), [
    "2026-01-04T00:00",
  ]);
  assert.deepEqual(next(crontab({ minute: "58-1", hour: 0 }), 3), [
    "2026-01-01T00:01",
    "2026-01-01T00:58",
    "2026-01-01T00:59",
  ]);
  assert.deepEqual(next(crontab({ minute: 0, hour: 0, monthOfYear: "11-2", dayOfMonth: 2 }), 3), [
    "2026-01-02T00:00",
    "2026-02-02T00:00",
    "2026-11-02T00:00",
  ]);
  // What the user wrote is kept (beat --list shows it); an out-of-range end is still refused.
  assert.equal(crontab({ hour: "22-2" }).hour, "22-2");
  assert.throws(() => crontab({ hour: "25-2" }), /crontab hour: "25-2" is not a valid cron field/);
});

Deno.test("schedules: month ends and the leap day", () => {
  const last31 = sched(crontab({ minute: 0, hour: 0, dayOfMonth: 31 }));
  let state: RunState = { lastRunAt: Date.parse("2026-01-31T00:00:00Z"), totalRunCount: 1 };
  const months: string[] = [];
  for (let i = 0; i < 3; i++) {
    const next = last31.nextRunAt(state)!;
    months.push(new Date(next).toISOString().slice(0, 10));
    state = last31.afterRun(state, next, next);
  }
  assert.deepEqual(
    months,
    ["2026-03-31", "2026-05-31", "2026-07-31"],
    "months without a 31st skip",
  );
  const leap = sched(crontab({ minute: 0, hour: 0, dayOfMonth: 29, monthOfYear: 2 }));
  const from = { lastRunAt: Date.parse("2026-03-01T00:00:00Z"), totalRunCount: 0 };
  assert.equal(new Date(leap.nextRunAt(from)!).toISOString(), "2028-02-29T00:00:00.000Z");
  const feb = sched(crontab({ minute: 0, hour: 0, dayOfMonth: 1, monthOfYear: 3 }));
  assert.equal(
    new Date(feb.nextRunAt({ lastRunAt: Date.parse("2028-02-28T12:00:00Z"), totalRunCount: 0 })!)
      .toISOString(),
    "2028-03-01T00:00:00.000Z",
  );
  // A day the month lacks does not make the next month's first days skipped (croner 11.0.0 did).
  const days = (spec: Parameters<typeof crontab>[0], after: string, n: number) => {
    const s = sched(crontab(spec));
    let st: RunState = { lastRunAt: Date.parse(after), totalRunCount: 1 };
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const next = s.nextRunAt(st)!;
      out.push(new Date(next).toISOString().slice(0, 10));
      st = s.afterRun(st, next, next);
    }
    return out;
  };
  assert.deepEqual(days({ minute: 0, hour: 0, dayOfMonth: "1,15,30" }, "2026-02-15T00:00:00Z", 3), [
    "2026-03-01",
    "2026-03-15",
    "2026-03-30",
  ]);
  assert.deepEqual(days({ minute: 0, hour: 0, dayOfMonth: "*/10" }, "2026-04-21T00:00:00Z", 2), [
    "2026-05-01",
    "2026-05-11",
  ]);
});

Deno.test("schedules: 02:30 on DST days runs exactly once (Europe/Berlin)", () => {
  const s = sched(crontab({ minute: 30, hour: 2 }), "Europe/Berlin");
  // Spring forward 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
  const spring = simulate(s, "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z");
  assert.deepEqual(spring, ["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"]);
  // Fall back 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
  const fall = simulate(s, "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z");
  assert.deepEqual(fall, ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]);
});

Deno.test("schedules: hours given as a list or range run 02:30 once on DST days, as Celery does", () => {
  // Celery 5.2.6 (Europe/Berlin) sends these at the same instants.
  const list = sched(crontab({ minute: 30, hour: [2, 14] }), "Europe/Berlin");
  assert.deepEqual(simulate(list, "2026-03-28T20:00:00Z", "2026-03-29T20:00:00Z"), [
    "2026-03-29T01:00:00.000Z", // 02:30 does not exist: 03:00 CEST
    "2026-03-29T12:30:00.000Z",
  ]);
  assert.deepEqual(simulate(list, "2026-10-24T20:00:00Z", "2026-10-25T20:00:00Z"), [
    "2026-10-25T00:30:00.000Z", // the first 02:30 only
    "2026-10-25T13:30:00.000Z",
  ]);
  const range = sched(crontab({ minute: 30, hour: "1-3" }), "Europe/Berlin");
  assert.deepEqual(simulate(range, "2026-03-28T20:00:00Z", "2026-03-29T03:00:00Z"), [
    "2026-03-29T00:30:00.000Z",
    "2026-03-29T01:00:00.000Z",
    "2026-03-29T01:30:00.000Z",
  ]);
  assert.deepEqual(simulate(range, "2026-10-24T20:00:00Z", "2026-10-25T03:00:00Z"), [
    "2026-10-24T23:30:00.000Z",
    "2026-10-25T00:30:00.000Z",
    "2026-10-25T02:30:00.000Z",
  ]);
});

Deno.test("schedules: hours with a step or a * run 02:30 once on DST days, as Celery does", () => {
  // Celery 5.2.6 expands every field to a set of values, so the spelling does not matter:
  // crontab.is_due (Europe/Berlin, a fake now ticking to each due time) sends these instants.
  const night = (hour: string, from: string, to: string) =>
    simulate(sched(crontab({ minute: 30, hour }), "Europe/Berlin"), from, to);
  const spring = ["2026-03-28T20:00:00Z", "2026-03-29T03:00:00Z"] as const;
  const fall = ["2026-10-24T20:00:00Z", "2026-10-25T03:00:00Z"] as const;
  for (const hour of ["0-2/2", "0,2", "22-2/2"]) {
    const s = night(hour, ...spring).filter((t) => t >= "2026-03-28T23");
    assert.deepEqual(s, ["2026-03-28T23:30:00.000Z", "2026-03-29T01:00:00.000Z"], `${hour} spring`);
    const f = night(hour, ...fall).filter((t) => t >= "2026-10-24T22");
    assert.deepEqual(f, ["2026-10-24T22:30:00.000Z", "2026-10-25T00:30:00.000Z"], `${hour} fall`);
  }
  assert.deepEqual(night("*/2", ...spring), [
    "2026-03-28T21:30:00.000Z",
    "2026-03-28T23:30:00.000Z",
    "2026-03-29T01:00:00.000Z", // 02:30 does not exist: 03:00 CEST
    "2026-03-29T02:30:00.000Z", // 04:30 CEST
  ]);
  assert.deepEqual(night("*/2", ...fall), [
    "2026-10-24T20:30:00.000Z",
    "2026-10-24T22:30:00.000Z",
    "2026-10-25T00:30:00.000Z", // the first 02:30 only
  ]);
});

Deno.test("schedules: DST days in America/New_York; quarter-hours skip the repeated hour", () => {
  const s = sched(crontab({ minute: 30, hour: 2 }), "America/New_York");
  const spring = simulate(s, "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z");
  assert.deepEqual(spring, ["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"]);
  const oneThirty = sched(crontab({ minute: 30, hour: 1 }), "America/New_York");
  const fall = simulate(oneThirty, "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z");
  assert.deepEqual(fall, ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]);
  // Every 15 minutes follows the wall clock as in Celery 5.2.6: 01:00-01:45 run the first
  // time only (05:00-05:45Z, not 06:00-06:45Z), and 03:00 EDT follows 01:45 EST.
  const q = sched(crontab({ minute: "*/15" }), "America/New_York");
  const night = simulate(q, "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z");
  assert.equal(night.length, 12);
  assert.deepEqual(night.slice(6, 8), ["2026-11-01T05:45:00.000Z", "2026-11-01T07:00:00.000Z"]);
  const springNight = simulate(q, "2026-03-08T05:00:00Z", "2026-03-08T09:00:00Z");
  assert.equal(springNight.length, 16);
  assert.deepEqual(springNight.slice(6, 8), [
    "2026-03-08T06:45:00.000Z",
    "2026-03-08T07:00:00.000Z",
  ]);
});

Deno.test("schedules: crontab is evaluated in the app's time zone", () => {
  const s = sched(crontab({ minute: 0, hour: 9 }), "Asia/Tokyo");
  const next = s.nextRunAt({ lastRunAt: Date.parse("2026-06-01T00:00:00Z"), totalRunCount: 0 });
  assert.equal(new Date(next!).toISOString(), "2026-06-02T00:00:00.000Z");
  assert.match(s.description, /crontab 0 9 \* \* \* \(Asia\/Tokyo\)/);
});

Deno.test("schedules: a one-off 'at' runs once, even when beat starts after it", () => {
  const s = sched(at("2026-05-01T10:00:00Z"));
  const sent = simulate(s, "2026-05-01T09:58:00Z", "2026-05-01T10:05:00Z");
  assert.deepEqual(sent, ["2026-05-01T10:00:00.000Z"]);
  const late = simulate(s, "2026-05-02T00:00:00Z", "2026-05-02T00:05:00Z");
  assert.deepEqual(late, ["2026-05-02T00:00:00.000Z"], "missed while no beat ran: sent once");
  assert.throws(() => at("2026-05-01 10:00"), BeatEntryError);
  // The same name given a later instant (schedule add once --at ... again): a new one-off,
  // which was never sent since the entry's run count was not 0.
  const ran = s.afterRun(
    { lastRunAt: 0, totalRunCount: 0 },
    s.nextRunAt({ lastRunAt: 0, totalRunCount: 0 })!,
    Date.parse("2026-05-01T10:00:01Z"),
  );
  assert.equal(s.nextRunAt(ran), null, "sent once");
  const again = sched(at("2026-05-03T08:00:00Z"));
  assert.equal(new Date(again.nextRunAt(ran)!).toISOString(), "2026-05-03T08:00:00.000Z");
});

Deno.test("schedules: bad input names the entry and the field", () => {
  const bad = (spec: unknown, field: RegExp, message: RegExp) => {
    assert.throws(
      () => compileEntry("nightly", { task: "t", schedule: spec as ScheduleSpec }, "UTC"),
      (err: unknown) => {
        assert.ok(err instanceof BeatEntryError, String(err));
        assert.equal(err.code, "BEAT_ENTRY_INVALID");
        assert.equal(err.entry, "nightly");
        assert.match(err.field, field);
        assert.match(err.message, /beat entry "nightly"/);
        assert.match(err.message, message);
        return true;
      },
    );
  };
  bad(-5, /^schedule$/, /positive number of seconds/);
  bad(0, /^schedule$/, /positive/);
  bad("-5s", /^schedule$/, /neither an interval/);
  bad("soon", /^schedule$/, /neither an interval/);
  bad("61 * * * *", /minute/, /"61" is not a valid cron field: minute takes 0-59/);
  // croner counts days and months from 0: its own words were "Invalid value for month: 12".
  bad("0 0 * 13 *", /monthOfYear/, /"13" is not a valid cron field: monthOfYear takes 1-12 /);
  bad("0 0 0 * *", /dayOfMonth/, /"0" is not a valid cron field: dayOfMonth takes 1-31$/);
  bad("0 0 * * */0", /dayOfWeek/, /takes 0-6 or sun-sat.*illegal stepping: 0/);
  bad("0 3 * *", /crontab/, /has 4 field\(s\)/);
  bad({ type: "crontab", minute: "0", hour: "25" }, /hour/, /not a valid cron field/);
  bad({ every: 5 }, /^schedule$/, /expected seconds/);
  // Celery raises "unable to rollover" at every tick; it never ran silently before.
  bad("0 0 31 2 *", /^schedule \(crontab\)$/, /never matches: no day 31 in month 2/);
  bad({ type: "crontab", dayOfMonth: "31", monthOfYear: "apr,jun" }, /crontab/, /never/);
  assert.ok(crontab({ minute: 0, hour: 0, dayOfMonth: 29, monthOfYear: 2, dayOfWeek: "mon" }));
  assert.throws(() => crontab({ minute: 0, hours: 3 } as never), /unknown field/);
  assert.throws(() => crontab({ dayOfWeek: "mon-funday" }), /dayOfWeek/);
  assert.throws(
    () => compileEntry("x", { task: "", schedule: 5 }, "UTC"),
    /beat entry "x", task: expected a task name/,
  );
  assert.throws(
    () => compileEntry("x", { task: "t", schedule: 5, args: {} as never }, "UTC"),
    /beat entry "x", args/,
  );
  assert.throws(
    () => compileEntry("x", { task: "t", schedule: 5, options: { queue: 3 as never } }, "UTC"),
    /beat entry "x", options\.queue/,
  );
  assert.throws(
    () => compileEntry("x", { task: "t", schedule: 5, options: { nope: 1 } as never }, "UTC"),
    /options\.nope: unknown option: the options are queue, /,
  );
  const option = (options: Record<string, unknown>, message: RegExp) =>
    assert.throws(
      () => compileEntry("x", { task: "t", schedule: 5, options: options as never }, "UTC"),
      message,
    );
  // A typo, Celery's snake_case name, and values the send would refuse at every run.
  option({ countdwn: 5 }, /options\.countdwn: unknown option \(did you mean "countdown"\?\)/);
  option(
    { routing_key: "r" },
    /options\.routing_key: unknown option \(did you mean "routingKey"\?\)/,
  );
  option(
    { serializer: "yaml" },
    /options\.serializer: serializer of "[^"]*" must be "json" or "msgpack", got "yaml"/,
  );
  option(
    { priority: 256 },
    /options\.priority: priority of "t" must be an integer from 0 to 255, got 256/,
  );
  option({ expires: "soon" }, /options\.expires: expires of "t" must be a Date, seconds from now/);
  option({ expires: -1 }, /options\.expires: expected seconds > 0 or a time/);
  option({ countdown: Infinity }, /options\.countdown: countdown of "t" must be a finite number/);
  option(
    { ignoreResult: "yes" },
    /options\.ignoreResult: ignoreResult of "t" must be true or false/,
  );
  option({ headers: [] }, /options\.headers: headers of "t" must be an object/);
  assert.throws(
    () => compileEntry("x", { task: "t", schedule: crontab("0 3 * * *") }, "Mars/Olympus"),
    /beat entry "x", timezone/,
  );
  assert.throws(
    () => resolveConfig({ broker: "kv://:memory:", timezone: "Mars/Olympus" }),
    /timezone "Mars\/Olympus" is not an IANA time zone/,
  );
});

Deno.test("schedules: entries for local tasks are typed by the task's parameters", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  const add = app.task("t.add", (a: number, b: number) => a + b);
  assert.deepEqual(beatEntry(add, 5, { args: [1, 2] }), {
    task: "t.add",
    schedule: 5,
    args: [1, 2],
  });
  // @ts-expect-error: a string where add takes a number
  beatEntry(add, 5, { args: ["1", 2] });
  // @ts-expect-error: too few arguments
  beatEntry(add, 5, { args: [1] });
  assert.equal(beatEntry("py.remote", "1h", { args: ["anything"] }).task, "py.remote");
  const periodic = new PeriodicTasks(app);
  // @ts-expect-error: the same check at run time
  await periodic.add("x", { task: add, schedule: 5, args: ["1", 2] }).catch(() => {});
  await periodic.close();
  await app.close();
});

Deno.test("schedules: day of week 7 is refused, as Celery's crontab does (Sunday is 0)", () => {
  // Celery 5.2.6: crontab(day_of_week="sun-7") raises "Invalid end range: 7 > 6"; croner took 7
  // as Sunday, so these ran on Sundays (every day for "0-7").
  for (const dayOfWeek of [7, "7", "sun-7", "0-7", "5-7", "1-7/2", "07", [1, 7]] as const) {
    assert.throws(
      () => crontab({ minute: 0, hour: 3, dayOfWeek }),
      (err: unknown) => {
        assert.ok(err instanceof BeatEntryError, String(err));
        assert.equal(err.field, "crontab dayOfWeek");
        assert.match(err.message, /7 is not a day of the week.*Sunday as 0 or "sun"; write "5-0"/);
        return true;
      },
    );
  }
  assert.throws(() => crontab("0 3 * * 7"), /7 is not a day of the week/);
  assert.throws(() => compileSchedule("0 3 * * 0-7", "UTC"), /7 is not a day of the week/);
  // What the message offers instead: "5-0" is Friday to Sunday; a step of 7 is not a day (Celery:
  // "*/7" is Sunday only).
  const runs = (dayOfWeek: string) => {
    const s = sched(crontab({ minute: 0, hour: 0, dayOfWeek }));
    let state: RunState = { lastRunAt: Date.parse("2026-01-01T00:00:00Z"), totalRunCount: 0 };
    const days: number[] = [];
    for (let i = 0; i < 4; i++) {
      const due = s.nextRunAt(state)!;
      days.push(new Date(due).getUTCDay());
      state = s.afterRun(state, due, due);
    }
    return days;
  };
  assert.deepEqual(runs("5-0"), [5, 6, 0, 5]);
  assert.deepEqual(runs("*/7"), [0, 0, 0, 0]);
});
