/**
 * A soft time limit that fires is logged by the worker, as Celery's
 * "Soft time limit (<s>s) exceeded for <task>[<id>]": a task that cleans up
 * and returns leaves a trace of the limit it met.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { celeriacWorker } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name: "soft time limit: the worker logs the limit, the task and its id when it fires",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("softlog");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `softlog-${crypto.randomUUID().slice(0, 8)}`;
  const worker = await celeriacWorker([
    "--app",
    "./tests/apps/pool_app.ts",
    "--broker",
    url,
    "--backend",
    url,
    "-Q",
    queue,
    "-c",
    "1",
  ]);
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  try {
    const r = await client.sendTask<{ cleaned: boolean }>("p.soft_cleanup", []);
    assert.equal((await r.get({ timeout: 10_000 })).cleaned, true);
    const line = new RegExp(
      `Soft time limit \\(0\\.3s\\) exceeded for p\\.soft_cleanup\\[${r.id}\\]`,
    );
    const until = Date.now() + 5_000;
    while (!line.test(worker.output) && Date.now() < until) {
      await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.match(worker.output, line);
  } finally {
    await client.close();
    await worker.stop();
    await deleteKeys(prefix);
  }
});
