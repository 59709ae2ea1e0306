/**
 * Bounded ETA memory (`--eta-task-limit`, Celery 5.6's
 * `worker_eta_task_limit`) and soft shutdown (`--soft-shutdown-timeout`,
 * Celery 5.5's `worker_soft_shutdown_timeout`), with real worker processes
 * on the shared Redis (keys under a prefix of this file's own).
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Celery } from "../mod.ts";
import { softShutdown, takeAllowance } from "../src/worker/scale_limits.ts";
import { Worker } from "../src/worker/worker.ts";
import { app as tasksApp } from "./apps/first_contact_app.ts";
import { interopWorker } from "./helpers/interop.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { waitUntil } from "./helpers/redis_servers.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { report } from "./helpers/report.ts";

Deno.test("scale limits: a take never asks for more ETA tasks than the limit leaves", () => {
  assert.equal(takeAllowance(8, 0, undefined), 8);
  assert.equal(takeAllowance(8, 1_000_000, undefined), 8);
  assert.equal(takeAllowance(8, 95, 100), 5);
  assert.equal(takeAllowance(8, 100, 100), 0);
  assert.equal(takeAllowance(0, 0, 100), 0);
});

Deno.test("scale limits: the soft phase ends when nothing runs, or at its timeout", async () => {
  let running = 2;
  const t0 = Date.now();
  setTimeout(() => running = 0, 100);
  assert.equal(
    await softShutdown(() => running, () => new Promise((r) => setTimeout(r, 20)), 5000),
    true,
  );
  assert.ok(Date.now() - t0 < 1000);
  const t1 = Date.now();
  assert.equal(
    await softShutdown(() => 1, () => new Promise((r) => setTimeout(r, 20)), 300),
    false,
  );
  assert.ok(Date.now() - t1 >= 290);
});

/** The resident set size of a process, in MiB. */
async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

Deno.test({
  name:
    "scale limits: --eta-task-limit leaves ETA tasks beyond the limit on the broker; all run on time",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const prefix = uniquePrefix("eta-limit");
  const url = `${REDIS_URL}?global_keyprefix=${prefix}`;
  const queue = `eta-limit-${crypto.randomUUID().slice(0, 8)}`;
  const marker = `${prefix}done`;
  const redis = new Redis(REDIS_URL);
  const app = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const worker = await interopWorker({ broker: url, backend: url }, queue, [
    "--eta-task-limit",
    "200",
  ]);
  try {
    const n = 5000;
    const rssBefore = await rssMiB(worker.child.pid);
    const eta = new Date(Date.now() + 12_000);
    for (let i = 0; i < n; i += 500) {
      await Promise.all(
        Array.from(
          { length: Math.min(500, n - i) },
          (_, j) => app.sendTask("tasks.record", [i + j, marker, 0], { eta }),
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 1500));
    // The worker holds at most 200 (as unacknowledged); the rest waits in the queue.
    const held = await redis.hlen(`${prefix}unacked`);
    const waiting = await app.queueDepth(queue);
    const rssHolding = await rssMiB(worker.child.pid);
    assert.ok(held <= 200, `holds ${held}`);
    assert.ok(waiting >= n - 200, `${waiting} left on the broker`);
    assert.equal(await redis.llen(marker), 0, "nothing ran before its ETA");
    await waitUntil("every task to run", async () => (await redis.llen(marker)) === n, 60_000);
    const doneAt = Date.now();
    const rssAfter = await rssMiB(worker.child.pid);
    const measured = {
      tasks: n,
      limit: 200,
      heldWhileWaiting: held,
      leftOnBroker: waiting,
      rssMiB: {
        before: rssBefore.toFixed(0),
        holding: rssHolding.toFixed(0),
        after: rssAfter.toFixed(0),
      },
      lastRanSecondsAfterEta: ((doneAt - eta.getTime()) / 1000).toFixed(1),
    };
    report(`eta limit: ${JSON.stringify(measured)}`);
  } finally {
    await worker.stop();
    await app.close();
    await deleteKeys(prefix);
    redis.disconnect();
  }
});

Deno.test({
  name:
    "scale limits: on SIGQUIT 200 running late-ack tasks get --soft-shutdown-timeout; the rest come back",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const prefix = uniquePrefix("soft");
  const url = `${REDIS_URL}?global_keyprefix=${prefix}`;
  const queue = `soft-${crypto.randomUUID().slice(0, 8)}`;
  const marker = `${prefix}done`;
  const redis = new Redis(REDIS_URL);
  const app = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const worker = await interopWorker({ broker: url, backend: url }, queue, [
    "--prefetch",
    "100",
    "--soft-shutdown-timeout",
    "4",
  ]);
  try {
    // 100 tasks of 1.5 s finish within the soft phase; 100 of 60 s do not.
    await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) => app.sendTask("tasks.mark_late", [i, marker, i % 2 ? 60_000 : 1500]),
      ),
    );
    await waitUntil(
      "200 tasks running",
      async () => (await redis.llen(`${marker}:started`)) === 200,
      20_000,
    );
    const t0 = Date.now();
    worker.signal("SIGQUIT");
    const status = await worker.child.status;
    const stoppedAfter = (Date.now() - t0) / 1000;
    const finished = (await redis.lrange(marker, 0, -1)).map(Number);
    const back = await app.queueDepth(queue);
    const measured = {
      running: 200,
      finished: finished.length,
      requeued: back,
      stoppedAfterSeconds: stoppedAfter.toFixed(1),
    };
    report(`soft shutdown: ${JSON.stringify(measured)}`);
    assert.equal(status.code, 0);
    assert.deepEqual(finished.sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i * 2));
    assert.equal(back, 100, "the long tasks are back in their queue");
    assert.ok(stoppedAfter < 15, `stopped after ${stoppedAfter} s`);
  } finally {
    await worker.stop();
    await app.close();
    await deleteKeys(prefix);
    redis.disconnect();
  }
});

Deno.test({
  name: "soft shutdown: terminate() returns once the running task ends, its take loop woken",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("soft-loop");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `soft-loop-${crypto.randomUUID().slice(0, 8)}`;
  tasksApp.configure({ broker: url, backend: url, defaultQueue: queue });
  const worker = new Worker({
    app: tasksApp,
    appModule: new URL("./apps/first_contact_app.ts", import.meta.url).href,
    queues: [queue],
    concurrency: 1,
    prefetch: 1, // the take loop sleeps while the nap runs
    softShutdownTimeout: 10,
    hostname: "soft-loop@test",
    remoteControl: false,
  });
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  try {
    await worker.start();
    const nap = await client.sendTask("fc.nap", [300]);
    await waitUntil("the nap to run", () => Promise.resolve(worker.active === 1), 10_000);
    const t0 = Date.now();
    await worker.terminate();
    const ms = Date.now() - t0;
    assert.equal(await nap.get({ timeout: 5000 }), 300);
    // The soft phase's sleep replaced the take loop's: terminate() waited out its 2 s grace.
    assert.ok(ms < 1500, `terminate() took ${ms} ms for a 300 ms task`);
  } finally {
    await worker.stop();
    await client.close();
    await tasksApp.close();
    await deleteKeys(prefix);
  }
});
