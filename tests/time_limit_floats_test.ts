/**
 * Time limits as Celery 5.2.6's worker shows them: Python floats. Its
 * `--time-limit 2 --soft-time-limit 1` give `inspect stats` a
 * `"timeouts": [1.0, 2.0]`, and `celery control time_limit t 1 2` sends
 * floats, so `inspect registered time_limit` shows `t [time_limit=2.0]`;
 * a Celeriac worker wrote `[1, 2]` and `time_limit=2`, and the command
 * line printed a Python worker's `[1.0, 2.0]` as `[1, 2]`.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { encodeControlReply } from "../src/protocol/control.ts";
import { jsonText } from "../src/protocol/json.ts";
import { pyJsonLoadsFloats } from "../src/protocol/json_floats.ts";
import { withPythonFloats } from "../src/worker/inspect_commands.ts";
import { registeredTasks } from "../src/worker/registered_tasks.ts";

/** The JSON a worker replies with `reply` to the command `method`. */
function replied(method: string, reply: unknown): string {
  const message = encodeControlReply("w@h", withPythonFloats(method, reply), {
    ticket: "t",
    clock: 1,
  });
  return new TextDecoder().decode(message.body);
}

Deno.test("time limit floats: stats' pool.timeouts are floats, a 0 (none) stays 0", () => {
  const stats = (timeouts: number[]) => ({ pid: 7, pool: { "max-concurrency": 2, timeouts } });
  assert.equal(
    replied("stats", stats([1, 2])),
    '{"w@h": {"pid": 7, "pool": {"max-concurrency": 2, "timeouts": [1.0, 2.0]}}}',
  );
  assert.equal(
    replied("stats", stats([0, 2.5])),
    '{"w@h": {"pid": 7, "pool": {"max-concurrency": 2, "timeouts": [0, 2.5]}}}',
  );
});

Deno.test("time limit floats: registered shows limits set at run time as floats", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  try {
    app.task("t.set", () => 1);
    app.task("t.own", { timeLimit: 5 }, () => 1);
    const timeLimits = new Map([["t.set", { timeLimit: 2, softTimeLimit: 1 }]]);
    assert.deepEqual(
      registeredTasks(app, ["time_limit", "soft_time_limit"], { rate: () => null, timeLimits }),
      // The task's own limit as its code wrote it, as Celery shows `time_limit=5`.
      ["t.own [time_limit=5]", "t.set [time_limit=2.0 soft_time_limit=1.0]"],
    );
  } finally {
    await app.close();
  }
});

Deno.test("time limit floats: the command line prints a reply's whole floats as floats", () => {
  const reply = '{"w@h": {"timeouts": [0, 2.0, 2.5, 1e3], "n": 18446744073709551616, "s": "1.0"}}';
  assert.equal(
    jsonText(pyJsonLoadsFloats(reply)),
    '{"w@h":{"timeouts":[0,2.0,2.5,1000.0],"n":18446744073709551616,"s":"1.0"}}',
  );
  // Python's NaN token: read as pyJsonLoads reads it.
  assert.deepEqual(pyJsonLoadsFloats('{"x": NaN, "y": 1}'), { x: NaN, y: 1 });
});
