/**
 * KV lease renewal at scale. A worker holding thousands of ETA tasks on a
 * short visibility timeout renews every lease in time, so each task runs
 * once. Before, the KV broker renewed one delivery per read and commit
 * (3,000 took over 2 s, longer than the renewal interval), and rounds
 * overlapped: leases ran out, sweeps restored the messages, and tasks ran
 * twice, some in the worker that still held its copy.
 */

import assert from "node:assert/strict";
import { until } from "./helpers/waits.ts";
import { withWorker } from "./helpers/worker.ts";

const HELD = 3_000;

Deno.test(`kv lease renewal: a worker holding ${HELD} ETA tasks on a 2 s visibility timeout runs each once`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-lease-" });
  const t = {
    broker: `kv://${dir}/b.sqlite?visibility_timeout=2`,
    backend: `kv://${dir}/r.sqlite`,
  };
  try {
    await withWorker(t, { concurrency: 4 }, async (client, worker) => {
      // 6 s of holding: a dozen renewal rounds (every 500 ms), six restore sweeps
      const calls = Array.from({ length: HELD }, (_, i) => ({
        name: "t.add",
        args: [i, 1],
        options: { countdown: 6 },
      }));
      const results = await client.sendMany<number>(calls);
      await until(`${HELD} tasks succeeded`, () => worker.stats.succeeded >= HELD, 120_000);
      // a message restored meanwhile would be taken again within a sweep or two
      await new Promise((r) => setTimeout(r, 2_500));
      assert.equal(worker.stats.received, HELD, "no message was delivered twice");
      assert.equal(worker.stats.succeeded, HELD, "no task ran twice");
      assert.equal(await results[HELD - 1].get({ timeout: 5_000 }), HELD);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
