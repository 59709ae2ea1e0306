/**
 * A late-ack task with `rejectOnWorkerLost` whose Web Worker always dies
 * (here: the task crashes its thread) is requeued, each requeue counted in
 * `x-delivery-count` as a restore after the visibility timeout is, so that
 * `maxDeliveries` parks it as poison instead of requeueing it forever.
 * On real Redis and on the embedded KV store.
 */

import assert from "node:assert/strict";
import { TaskError } from "../mod.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { redisAndKv, withWorker } from "./helpers/worker.ts";

const { transports, cleanup } = await redisAndKv("lostpoison");

for (const t of transports) {
  Deno.test({
    name:
      `worker lost poison (${t.name}): a task that always kills its Web Worker is parked after maxDeliveries`,
    ignore: t.name === "redis" && WITHOUT_REDIS,
  }, async () => {
    const options = { acksLate: true, rejectOnWorkerLost: true, maxDeliveries: 3 };
    await withWorker(t, options, async (client, worker) => {
      const r = await client.sendTask("t.crash", []);
      const err = await r.get({ timeout: 30_000 }).then(() => null, (e) => e);
      assert.ok(err instanceof TaskError, `a FAILURE, not requeued forever: ${err}`);
      assert.equal(err.excType, "PoisonMessage");
      // Run once per delivery, the limit and no more; the 4th delivery is received and parked unrun.
      assert.equal(worker.stats.received, 4, "3 runs, then the delivery parked as poison");
      assert.equal(worker.stats.parked, 1, "the poison park is counted (the stop line's parked)");
      const parked = await (await client.broker()).listParked();
      assert.match(
        parked.find((p) => p.taskId === r.id)?.reason ?? "",
        /poison message: given back 3 times by consumers that died holding it \(limit 3/,
      );
    });
  });
}

Deno.test({ name: "worker lost poison: clean up", ignore: WITHOUT_REDIS }, async () => {
  await cleanup();
});
