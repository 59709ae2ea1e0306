/**
 * Shutdown under load (real worker processes on Redis): 100 tasks in flight,
 * early-ack, late-ack and ETA. A SIGTERM finishes what runs and puts back
 * what is held; after a restart every task has run exactly once. A second
 * signal requeues what still runs; after a restart every task has finished
 * exactly once.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { celeriacWorker, celeriacWorkerArgs } from "./helpers/procs.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix, waitForList } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const prefix = uniquePrefix("shutdown");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

function worker(queue: string) {
  return celeriacWorker(
    celeriacWorkerArgs({ app: "./tests/interop/tasks.ts", url: BROKER, queue, concurrency: 2 }, [
      "--prefetch",
      "20",
    ]),
    { INTEROP_MARKER_REDIS: REDIS_URL },
  );
}

/** 40 late-ack, 40 early-ack and 20 ETA tasks; returns their numbers. */
async function sendLoad(app: Celery, key: string, ms: number): Promise<number[]> {
  const sent: Promise<unknown>[] = [];
  for (let n = 0; n < 100; n++) {
    const name = n % 5 === 4 ? "tasks.mark" : n % 2 === 0 ? "tasks.mark_late" : "tasks.mark";
    const countdown = n % 5 === 4 ? 1.5 : undefined;
    sent.push(app.sendTask(name, [n, key, ms], { countdown }));
  }
  await Promise.all(sent);
  return Array.from({ length: 100 }, (_, n) => n);
}

/** Messages taken and not yet acknowledged, across this file's queues. */
async function unackedCount(): Promise<number> {
  const redis = await rawRedis();
  try {
    return await redis.hlen(`${prefix}unacked`);
  } finally {
    await redis.quit();
  }
}

function counts(list: string[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const s of list) m.set(Number(s), (m.get(Number(s)) ?? 0) + 1);
  return m;
}

Deno.test({
  name: "shutdown under load: SIGTERM with 100 in flight loses none and runs none twice",
  ignore: WITHOUT_REDIS,
}, async () => {
  const queue = `q-down-${crypto.randomUUID().slice(0, 8)}`;
  const key = `${prefix}warm`;
  const app = new Celery({ broker: BROKER, backend: BROKER, defaultQueue: queue });
  try {
    const first = await worker(queue);
    const all = await sendLoad(app, key, 300);
    await waitForList(`${key}:started`, 20, 20_000);
    const status = await first.stop("SIGTERM");
    assert.equal(status.code, 0, first.output);
    assert.match(first.output, /warm shutdown/);
    const doneBefore = (await waitForList(key, 0, 0)).length;
    assert.ok(doneBefore >= 20 && doneBefore < 100, `finished before restart: ${doneBefore}`);
    const second = await worker(queue);
    try {
      await waitForList(key, 100, 30_000);
    } finally {
      // Its warm shutdown finishes whatever it still runs: a task run twice shows after it.
      assert.equal((await second.stop("SIGTERM")).code, 0, second.output);
    }
    const finished = counts(await waitForList(key, 100, 0));
    const started = counts(await waitForList(`${key}:started`, 100, 0));
    assert.deepEqual([...finished.keys()].sort((a, b) => a - b), all);
    assert.deepEqual([...finished.values()].filter((c) => c !== 1), [], "finished twice");
    assert.deepEqual([...started.values()].filter((c) => c !== 1), [], "started twice");
    // Nothing left to run a second time: none waits in the queue, none is held unacked.
    assert.equal(await app.queueDepth(queue), 0);
    assert.equal(await unackedCount(), 0);
  } finally {
    await app.close();
  }
});

Deno.test({
  name: "shutdown under load: a second signal requeues running tasks; each finishes once",
  ignore: WITHOUT_REDIS,
}, async () => {
  const queue = `q-cold-${crypto.randomUUID().slice(0, 8)}`;
  const key = `${prefix}cold`;
  const app = new Celery({ broker: BROKER, backend: BROKER, defaultQueue: queue });
  try {
    const first = await worker(queue);
    const all = await sendLoad(app, key, 2000);
    await waitForList(`${key}:started`, 40, 20_000);
    first.signal("SIGTERM");
    await first.waitFor(/warm shutdown/);
    const status = await first.stop("SIGTERM");
    assert.equal(status.code, 0, first.output);
    assert.match(first.output, /cold shutdown, requeueing \d+ running task/);
    const second = await worker(queue);
    try {
      await waitForList(key, 100, 60_000);
    } finally {
      assert.equal((await second.stop("SIGTERM")).code, 0, second.output);
    }
    const finished = counts(await waitForList(key, 100, 0));
    assert.deepEqual([...finished.keys()].sort((a, b) => a - b), all);
    assert.deepEqual([...finished.values()].filter((c) => c !== 1), [], "finished twice");
    assert.equal(await app.queueDepth(queue), 0);
    assert.equal(await unackedCount(), 0);
  } finally {
    await app.close();
  }
});

Deno.test({ name: "shutdown under load: clean up", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(prefix);
});
