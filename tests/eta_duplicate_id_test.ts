/**
 * Two ETA messages with one task id (review 1, notes): the intake kept
 * only the last held under that id, so a revoke cancelled that one early
 * and left the first held, unacknowledged, until it was due (and it went
 * back to the queue at shutdown). A revoke now ends both at once.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";

Deno.test("eta: a revoke ends every held message of a duplicated task id at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-eta-dup-" });
  const url = `kv://${dir}/b.sqlite`;
  const queue = `etadup-${crypto.randomUUID().slice(0, 8)}`;
  const app = new Celery({ broker: url, backend: url, defaultQueue: queue });
  app.task("t.add", (a: number, b: number) => a + b);
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const worker = new Worker({ app, pool: "inline" });
  await worker.start();
  try {
    const id = crypto.randomUUID();
    const [first] = await Promise.all(
      [1, 2].map((n) => client.sendTask("t.add", [n, 0], { taskId: id, countdown: 3600 })),
    );
    while (worker.stats.received < 2) await new Promise((r) => setTimeout(r, 20));
    await first.revoke();
    assert.equal(
      await first.get({ timeout: 5000 }).then(() => null, (e) => e.excType),
      "TaskRevokedError",
    );
  } finally {
    await worker.stop();
  }
  try {
    // Both were acknowledged as REVOKED: none is still held, to be put back at shutdown.
    assert.equal(await client.queueDepth(queue), 0);
  } finally {
    await Promise.all([app.close(), client.close()]);
    await Deno.remove(dir, { recursive: true });
  }
});
