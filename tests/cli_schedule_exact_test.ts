/**
 * `schedule add -a/-k` keep what Celery's `json.loads` keeps: an integer
 * beyond 2^53 exact and a float literal a float, from the flag through the
 * beat store to the entry beat sends.
 */

import assert from "node:assert/strict";
import { Celery, PeriodicTasks } from "../mod.ts";
import { pyJsonDumps } from "../src/protocol/json.ts";
import { runCli } from "./helpers/procs.ts";

Deno.test("cli schedule add: -a/-k keep a big integer and 1.0 exact through the beat store", async () => {
  // The flags went through JSON.parse and the store through JSON.stringify:
  // 12345678901234567890 became 12345678901234567000 and 1.0 became 1.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-schedule-exact-" });
  const broker = `kv://${dir}/b.sqlite`;
  const app = new Celery({ broker, backend: null });
  try {
    const env = { BEAT_BROKER: broker, BEAT_QUEUE: "ticks", BEAT_EVERY: "60" };
    const added = await runCli([
      "schedule",
      "add",
      "exact",
      "--task",
      "beat.exact", // not registered by beat_app.ts, whose beat.tick takes one argument
      "--every",
      "5s",
      "-a",
      "[12345678901234567890, 1.0]",
      "-k",
      '{"w": 1e2}',
      "--app",
      "tests/apps/beat_app.ts",
    ], { env });
    assert.equal(added.code, 0, added.stderr);
    const entry = (await new PeriodicTasks(app).entries()).find((e) => e.name === "exact");
    assert.ok(entry, "the entry is stored");
    assert.equal(
      pyJsonDumps([entry.args, entry.kwargs]),
      '[[12345678901234567890, 1.0], {"w": 100.0}]',
    );
  } finally {
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});
