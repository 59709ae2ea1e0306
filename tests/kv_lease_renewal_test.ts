/**
 * KV lease renewal at scale. A worker holding thousands of ETA tasks on a
 * short visibility timeout renews every lease in time, so each task runs
 * once. Before, the KV broker renewed one delivery per read and commit
 * (3,000 took over 2 s, longer than the renewal interval), and rounds
 * overlapped: leases ran out, sweeps restored the messages, and tasks ran
 * twice, some in the worker that still held its copy. A held task whose
 * lease ran out all the same (a stalled worker) is dropped by its worker
 * once a renewal finds its message restored, so it runs once.
 */

import assert from "node:assert/strict";
import { openKvBroker } from "../src/broker/kv.ts";
import type { Unacked } from "../src/broker/kv_message.ts";
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

Deno.test("kv lease renewal: a held ETA task whose lease ran out and was restored runs once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-lease-" });
  const file = `${dir}/b.sqlite`;
  const t = { broker: `kv://${file}?visibility_timeout=2`, backend: `kv://${dir}/r.sqlite` };
  const raw = await Deno.openKv(file);
  try {
    await withWorker(t, {}, async (client, worker) => {
      const result = await client.sendTask<number>("t.add", [2, 3], { countdown: 4 });
      const unacked = () => Array.fromAsync(raw.list<Unacked>({ prefix: ["celeriac", "unacked"] }));
      await until("the worker holds the task", async () => (await unacked()).length === 1);
      const [held] = await unacked();
      // As after a stall: its lease runs out and a sweep (another process's) restores it.
      await until("a sweep restored it", async () => {
        const e = await raw.get<Unacked>(held.key);
        if (e.versionstamp === null) return true;
        await raw.atomic().check(e).set(e.key, { ...e.value, deadline: 0 }).commit();
        const sweeper = await openKvBroker(`kv://${file}`);
        await sweeper.take(["nothing-here"], { max: 1, signal: AbortSignal.timeout(50) });
        await sweeper.close();
        return false;
      });
      assert.equal(await result.get({ timeout: 15_000 }), 5);
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(worker.stats.received, 2, "the restored message came back to the worker");
      assert.equal(worker.stats.succeeded, 1, "the task ran once: the held copy was dropped");
    });
  } finally {
    raw.close();
    await Deno.remove(dir, { recursive: true });
  }
});
