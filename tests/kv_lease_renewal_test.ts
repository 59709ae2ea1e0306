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
import { reset } from "@logtape/logtape";
import { openKvBroker } from "../src/broker/kv.ts";
import type { Unacked } from "../src/broker/kv_message.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { until } from "./helpers/waits.ts";
import { withWorker } from "./helpers/worker.ts";
import type { Celery } from "../mod.ts";
import type { Worker, WorkerOptions } from "../src/worker/worker.ts";

const HELD = 3_000;

Deno.test(`kv lease renewal: a worker holding ${HELD} ETA tasks on a 2 s visibility timeout runs each once`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-lease-" });
  const t = {
    broker: `kv://${dir}/b.sqlite?visibility_timeout=2`,
    backend: `kv://${dir}/r.sqlite`,
  };
  const records = await captureLogs("warning");
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
      assert.equal(worker.stats.succeeded, HELD, "no task ran twice");
      // A held copy whose renewal came too late on a loaded host is dropped
      // (and said so) when its message is restored: received again, run once.
      const dropped = records
        .filter((r) => logLine(r).startsWith("warning Dropped "))
        .reduce((n, r) => n + Number(r.properties.n), 0);
      assert.ok(dropped <= HELD / 100, `${dropped} held copies dropped: renewal fell behind`);
      assert.equal(worker.stats.received, HELD + dropped, "no message was delivered twice unsaid");
      assert.equal(await results[HELD - 1].get({ timeout: 5_000 }), HELD);
    });
  } finally {
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Run a worker on a KV broker (2 s visibility timeout) with `raw` open on its file. */
async function withKvWorker(
  options: Partial<WorkerOptions>,
  fn: (client: Celery, worker: Worker, raw: Deno.Kv, file: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-lease-" });
  const file = `${dir}/b.sqlite`;
  const t = { broker: `kv://${file}?visibility_timeout=2`, backend: `kv://${dir}/r.sqlite` };
  const raw = await Deno.openKv(file);
  try {
    await withWorker(t, options, (client, worker) => fn(client, worker, raw, file));
  } finally {
    raw.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The worker's unacknowledged entries. */
function unacked(raw: Deno.Kv): Promise<Deno.KvEntry<Unacked>[]> {
  return Array.fromAsync(raw.list<Unacked>({ prefix: ["celeriac", "unacked"] }));
}

/** As after a stall: the entry's lease runs out and a sweep (another process's) restores it. */
async function expireAndRestore(raw: Deno.Kv, file: string, key: Deno.KvKey): Promise<void> {
  await until("a sweep restored it", async () => {
    const e = await raw.get<Unacked>(key);
    if (e.versionstamp === null) return true;
    await raw.atomic().check(e).set(e.key, { ...e.value, deadline: 0 }).commit();
    const sweeper = await openKvBroker(`kv://${file}`);
    await sweeper.take(["nothing-here"], { max: 1, signal: AbortSignal.timeout(50) });
    await sweeper.close();
    return false;
  });
}

// etaTaskLimit 1: the worker holding its one ETA task does not take until the dropped copy wakes
// its take loop (review 29: it slept for ever and the restored message stayed in its queue).
for (const etaTaskLimit of [undefined, 1]) {
  Deno.test(`kv lease renewal: a held ETA task whose lease ran out and was restored runs once (etaTaskLimit ${etaTaskLimit ?? "none"})`, async () => {
    await withKvWorker({ etaTaskLimit }, async (client, worker, raw, file) => {
      const result = await client.sendTask<number>("t.add", [2, 3], { countdown: 4 });
      await until("the worker holds the task", async () => (await unacked(raw)).length === 1);
      const [held] = await unacked(raw);
      await expireAndRestore(raw, file, held.key);
      assert.equal(await result.get({ timeout: 15_000 }), 5);
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(worker.stats.received, 2, "the restored message came back to the worker");
      assert.equal(worker.stats.succeeded, 1, "the task ran once: the held copy was dropped");
    });
  });
}

// At the rate-limit backlog cap (max(100, 4 × capacity) waiting for a token) the worker does not
// take; dropping a waiting copy whose lease ran out must wake it to take the restored message.
Deno.test("kv lease renewal: a rate-limited task restored at the backlog cap is taken again", async () => {
  const CAP = 100;
  await withKvWorker({ concurrency: 1 }, async (client, worker, raw, file) => {
    worker.setRateLimit("t.add", "1/h");
    await client.sendMany<number>(
      Array.from({ length: CAP + 1 }, (_, i) => ({ name: "t.add", args: [i, 1] })),
    );
    await until(`${CAP} tasks wait for a token`, async () => (await unacked(raw)).length === CAP);
    assert.equal(worker.stats.received, CAP + 1);
    const [waiting] = await unacked(raw);
    await expireAndRestore(raw, file, waiting.key);
    await until(
      "the restored message was received again",
      () => worker.stats.received === CAP + 2,
      15_000,
    );
    assert.equal(worker.stats.succeeded, 1, "only the first got a token");
  });
});
