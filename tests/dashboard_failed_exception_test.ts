/**
 * The exception the dashboard shows for a task-failed event whose
 * `exception` is Celery 5.2.6's `ExceptionWithTraceback()` (its solo and
 * threads pools): the one the event's traceback ends with
 * (src/dashboard/failed_exception.ts; tests/dashboard_python_solo_test.ts
 * checks it against real Python workers).
 */

import assert from "node:assert/strict";
import { TaskTable } from "../src/dashboard/task_table.ts";

const frames = 'Traceback (most recent call last):\n  File "/app/tasks.py", line 9, in run\n' +
  "    raise error\n";

Deno.test("dashboard: a wrapped exception shows as the one its traceback ends with", () => {
  const cases: [string, string | null, string][] = [
    ["ValueError: boom\n", frames, "ValueError('boom')"],
    // Not a builtin: Python's traceback qualifies it, its repr does not.
    ["app.tasks.CustomError: ('custom', 42)\n", frames, "CustomError('custom', 42)"],
    ["KeyError\n", frames, "KeyError()"],
    ["ValueError: it's\nsecond line\n", frames, `ValueError("it's\\nsecond line")`],
    // Python 3.11's carets, and a chained exception: the last one counts.
    [
      "TypeError: inner\n\nDuring handling of the above exception, another exception occurred:\n\n" +
      frames + "    ^^^^^^^^^^^\nRuntimeError: outer\n",
      frames,
      "RuntimeError('outer')",
    ],
    // Nothing to read it from: as sent.
    ["", null, "ExceptionWithTraceback()"],
  ];
  const table = new TaskTable();
  for (const [i, [tail, head, want]] of cases.entries()) {
    table.apply({
      type: "task-failed",
      hostname: "w@h",
      timestamp: 1,
      uuid: `t${i}`,
      exception: "ExceptionWithTraceback()",
      traceback: head === null ? null : head + tail,
    });
    assert.equal(table.get(`t${i}`)?.exception, want, `case ${i}`);
  }
  // Any other exception is shown as sent.
  table.apply({
    type: "task-failed",
    hostname: "w@h",
    timestamp: 1,
    uuid: "plain",
    exception: "KeyError('k')",
    traceback: frames + "ValueError: other\n",
  });
  assert.equal(table.get("plain")?.exception, "KeyError('k')");
});
