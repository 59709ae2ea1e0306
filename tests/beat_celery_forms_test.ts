/**
 * Schedule forms Celery 5.2.6 refuses are refused here too, naming the
 * field: cron's L, W, #, ?, a step without a range, month names; and
 * intervals too short to be meant (sent back to back).
 */

import assert from "node:assert/strict";
import { crontab } from "../mod.ts";
import { compileSchedule, parseInterval } from "../protocol.ts";

Deno.test("celery forms: cron forms Celery's crontab refuses are refused, naming the field", () => {
  // Each refused by Celery 5.2.6: ValueError: Invalid weekday literal '...'.
  const refused: [Parameters<typeof crontab>[0], string][] = [
    [{ dayOfMonth: "L" }, "dayOfMonth"],
    [{ dayOfMonth: "15W" }, "dayOfMonth"],
    [{ dayOfWeek: "1#2" }, "dayOfWeek"],
    [{ dayOfWeek: "5L" }, "dayOfWeek"],
    [{ dayOfWeek: "L" }, "dayOfWeek"],
    [{ dayOfMonth: "?" }, "dayOfMonth"],
    [{ minute: "10/15" }, "minute"],
    [{ monthOfYear: "jan" }, "monthOfYear"],
    [{ monthOfYear: "jan-mar" }, "monthOfYear"],
    ["0 0 L * *", "dayOfMonth"],
    ["0 0 * * ?", "dayOfWeek"],
    ["0 0 1 jan *", "monthOfYear"],
  ];
  for (const [fields, field] of refused) {
    assert.throws(
      () => crontab(fields),
      (err: Error) =>
        err.name === "BeatEntryError" &&
        err.message.includes(`crontab ${field}`) &&
        /not a form Celery's crontab takes/.test(err.message),
      JSON.stringify(fields),
    );
  }
  // What Celery takes stays accepted.
  for (
    const ok of [
      { minute: "*/15" },
      { minute: "0-59/5" },
      { hour: "22-2" },
      { dayOfWeek: "mon-fri" },
      { dayOfWeek: "sunday" },
      { dayOfWeek: "fri-mon,3" },
      { dayOfMonth: "1-31/2", monthOfYear: "*/2" },
    ]
  ) crontab(ok);
  crontab("0 9,17 * * mon-fri");
});

Deno.test("celery forms: an interval under 1 ms is refused", () => {
  // 0.0001 s (schedule add --every 0.0001) made beat send 455 times in 2 s.
  for (const value of [0.0001, "0.5ms", "0.0009"]) {
    assert.throws(() => parseInterval(value), /at least 1 ms/, String(value));
    assert.throws(() => compileSchedule(value, "UTC"), /at least 1 ms/, String(value));
  }
  assert.equal(parseInterval(0.001), 1);
  assert.equal(parseInterval("1ms"), 1);
});
