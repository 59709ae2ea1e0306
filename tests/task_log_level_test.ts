/**
 * The worker's per-task log lines ("received", "succeeded") are off by
 * default, as in Celery (worker default WARNING, those lines at INFO), while
 * its own lines (start, ready) stay; `--loglevel INFO` shows them.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { cliLogLevels } from "../worker.ts";
import { celeriacWorker } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test("cliLogLevels: per-task lines at WARNING unless --loglevel is given", () => {
  assert.deepEqual(cliLogLevels(undefined), { level: "info", taskLevel: "warning" });
  assert.deepEqual(cliLogLevels("INFO"), { level: "info", taskLevel: "info" });
  assert.deepEqual(cliLogLevels("debug"), { level: "debug", taskLevel: "debug" });
  assert.deepEqual(cliLogLevels("ERROR"), { level: "error", taskLevel: "error" });
  assert.throws(() => cliLogLevels("LOUD"), { name: "UsageError", message: /Unknown log level/ });
});

for (
  const [label, flags, perTask] of [
    ["default flags", [], false],
    ["--loglevel INFO", ["--loglevel", "INFO"], true],
  ] as const
) {
  Deno.test({
    name: `worker with ${label}: per-task lines ${
      perTask ? "shown" : "hidden"
    }, start and ready shown`,
    ignore: WITHOUT_REDIS,
  }, async () => {
    const prefix = uniquePrefix("tasklog");
    const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
    const queue = `tasklog-${crypto.randomUUID().slice(0, 8)}`;
    const worker = await celeriacWorker([
      "--app",
      "./tests/apps/worker_app.ts",
      "--broker",
      url,
      "--backend",
      url,
      "-Q",
      queue,
      "-c",
      "1",
      ...flags,
    ]);
    const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
    try {
      const r = await client.sendTask<number>("t.add", [2, 3]);
      assert.equal(await r.get({ timeout: 20_000 }), 5);
      await worker.stop("SIGTERM");
      assert.match(worker.output, /celeriac \S+ \S+: app /);
      assert.match(worker.output, / ready: /);
      assert.equal(new RegExp(`t\\.add\\[${r.id}\\] received`).test(worker.output), perTask);
      assert.equal(new RegExp(`t\\.add\\[${r.id}\\] succeeded in`).test(worker.output), perTask);
    } finally {
      await worker.stop("SIGKILL");
      await client.close();
      await deleteKeys(prefix);
    }
  });
}
