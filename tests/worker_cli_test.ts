/**
 * The worker command line under signals: one SIGTERM finishes running tasks
 * and puts held ETA tasks back; a second signal requeues what still runs.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { celeriacWorker } from "./helpers/procs.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const prefix = uniquePrefix("cli");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
const BACKEND = BROKER;

async function setup(queue: string) {
  const worker = await celeriacWorker([
    "--app",
    "./tests/apps/worker_app.ts",
    "--broker",
    BROKER,
    "--backend",
    BACKEND,
    "-Q",
    queue,
    "-c",
    "1",
    "--prefetch",
    "2",
    "--loglevel",
    "INFO",
  ]);
  const client = new Celery({ broker: BROKER, backend: BACKEND, defaultQueue: queue });
  return { worker, client, broker: await client.broker() };
}

async function unackedCount(): Promise<number> {
  const r = await rawRedis();
  const n = await r.hlen(`${prefix}unacked`);
  await r.quit();
  return n;
}

Deno.test({
  name: "worker cli: SIGTERM finishes running tasks and puts held ETA tasks back",
  ignore: WITHOUT_REDIS,
}, async () => {
  const queue = `cli-warm-${crypto.randomUUID().slice(0, 8)}`;
  const { worker, client, broker } = await setup(queue);
  try {
    // Held ETA tasks take no slot; the two slow ones then fill both slots.
    const held = await client.sendTask<number>("t.add", [1, 1], { countdown: 60 });
    await worker.waitFor(new RegExp(`t\\.add\\[${held.id}\\] received, ETA`));
    const running = await Promise.all(
      [1, 2].map(() => client.sendTask<number>("t.slow_late", [800])),
    );
    await worker.waitFor(/t\.slow_late\[[^\]]+\] received[\s\S]*t\.slow_late\[[^\]]+\] received/);
    const waiting = await client.sendTask<number>("t.slow", [10]);
    const status = await worker.stop("SIGTERM");
    assert.equal(status.code, 0);
    assert.deepEqual(await Promise.all(running.map((r) => r.get({ timeout: 1000 }))), [800, 800]);
    assert.equal(await held.state(), "PENDING");
    assert.equal(await waiting.state(), "PENDING");
    assert.equal(
      await broker.queueDepth(queue),
      2,
      "the ETA task is back and the waiting one stayed",
    );
    assert.equal(await unackedCount(), 0, "everything taken was settled");
    assert.match(worker.output, /warm shutdown/);
    assert.equal(await broker.purge(queue), 2);
  } finally {
    await client.close();
  }
});

Deno.test({
  name:
    "worker cli: a second signal requeues running tasks (late-ack requeued, early-ack republished)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const queue = `cli-cold-${crypto.randomUUID().slice(0, 8)}`;
  const { worker, client, broker } = await setup(queue);
  try {
    const late = await client.sendTask<number>("t.slow_late", [5000]);
    const early = await client.sendTask<number>("t.slow", [5000]);
    await worker.waitFor(/t\.slow\[[^\]]+\] received/);
    await worker.waitFor(/t\.slow_late\[[^\]]+\] received/);
    worker.signal("SIGINT");
    await worker.waitFor(/warm shutdown/);
    const status = await worker.stop("SIGINT");
    assert.equal(status.code, 0);
    assert.match(worker.output, /cold shutdown, requeueing 2 running task/);
    assert.equal(await broker.queueDepth(queue), 2, "both running tasks are back in the queue");
    assert.equal(await unackedCount(), 0);
    assert.equal(await late.state(), "PENDING");
    assert.equal(await early.state(), "PENDING");
    const back = await broker.take([queue], { max: 2 });
    assert.deepEqual(back.map((d) => d.headers.id).sort(), [late.id, early.id].sort());
    await broker.ack(back);
  } finally {
    await client.close();
  }
});

Deno.test({ name: "worker cli: clean up", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(prefix);
});
