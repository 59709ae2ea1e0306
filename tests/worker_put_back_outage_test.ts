/**
 * Tasks a Web Worker held but had not started when it died (task code
 * called `Deno.exit`) or was terminated (a revoke with terminate; a hard
 * time limit takes the same path) are put back in their queues even when
 * the result backend is down for longer than `outageRetryLimit`: putting
 * them back needs only the broker, and does not wait for the failure or
 * REVOKED entry stored for the task that ended. Early-acknowledged ones
 * were lost, late-acknowledged ones came back only after the visibility
 * timeout.
 */

import assert from "node:assert/strict";
import type { Celery } from "../mod.ts";
import type { Worker } from "../src/worker/worker.ts";
import { app as exitApp } from "./apps/exit_app.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { withAppWorker } from "./helpers/worker.ts";
import { exists, until } from "./helpers/waits.ts";

const APP = new URL("./apps/exit_app.ts", import.meta.url).href;

/**
 * On a worker (one Web Worker, prefetch 4) whose backend is a private Redis,
 * block the Web Worker with `x.until`, hand it three tasks (early, late,
 * early ack), stop the backend, end the blocked task with `end`, and check
 * the three run.
 */
async function heldTasksRun(
  end: (client: Celery, blockerId: string, file: string) => Promise<void>,
): Promise<void> {
  const backend = await PrivateRedis.start();
  const prefix = uniquePrefix("put-back-outage");
  const broker = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const dir = await Deno.makeTempDir({ prefix: "celeriac-put-back-" });
  const file = `${dir}/go`;
  const limit = exitApp.config.outageRetryLimit;
  const queue = `pq-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const config = { broker, backend: backend.url };
    exitApp.configure({ outageRetryLimit: 1 });
    await withAppWorker(exitApp, APP, config, { prefetch: 4 }, async (client, worker: Worker) => {
      const blocker = await client.sendTask("x.until", [file, true]);
      await until("the blocking task to start", () => exists(`${file}.started`));
      await client.sendTask("x.wid", [1]);
      await client.sendTask("x.wid_late", [2]);
      await client.sendTask("x.wid", [3]);
      await until("the three tasks handed to the pool", () => worker.stats.received >= 4);
      await backend.down();
      await end(client, blocker.id, file);
      // Before: 0 of 3 (early ack: lost; late ack: back after the visibility timeout, an hour).
      await until("the three tasks held to run", () => worker.stats.succeeded >= 3);
      assert.equal(worker.stats.succeeded, 3);
      assert.equal(await client.queueDepth(queue), 0);
    }, queue);
  } finally {
    exitApp.configure({ outageRetryLimit: limit });
    // Ends a thread Deno left running.
    await Deno.writeTextFile(file, "");
    await deleteKeys(prefix);
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "Web Worker dies, backend down past outageRetryLimit: the tasks it had not started run",
  ignore: WITHOUT_REDIS,
}, async () => {
  await heldTasksRun(async (_client, _id, file) => {
    await Deno.writeTextFile(file, "");
  });
});

Deno.test({
  name: "revoke with terminate, backend down past outageRetryLimit: the tasks held with it run",
  ignore: WITHOUT_REDIS,
}, async () => {
  await heldTasksRun(async (client, id) => {
    await client.control.revoke(id, { terminate: true });
  });
});
