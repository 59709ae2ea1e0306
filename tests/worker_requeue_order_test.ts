/**
 * A worker gives what it holds back to the broker in the order it received
 * it: at shutdown, ETA tasks held (whatever their ETAs) and rate-limited
 * ones, and at a cold shutdown the running tasks with them, are at the head
 * of their queue in their original order.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { openKvBroker } from "../src/broker/kv.ts";
import type { Broker, Delivery } from "../src/broker/port.ts";
import { settleLost } from "../src/worker/outcomes.ts";
import { Worker } from "../src/worker/worker.ts";
import { WorkerState } from "../src/worker/worker_state.ts";

const kvDir = await Deno.makeTempDir({ prefix: "celeriac-requeue-order-" });

/** What the queue holds now, head first (taken then requeued as it was). */
async function queued(url: string, queue: string, n: number): Promise<unknown[]> {
  const broker = await openKvBroker(url);
  try {
    const got: Delivery[] = [];
    while (got.length < n) {
      const more = await broker.take([queue], {
        max: n - got.length,
        signal: AbortSignal.timeout(5000),
      });
      if (more.length === 0) break;
      got.push(...more);
    }
    await broker.ack(got);
    return got.map((d) => JSON.parse(new TextDecoder().decode(d.body))[0][0]);
  } finally {
    await broker.close();
  }
}

async function until(what: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("requeue order: a warm shutdown gives held ETA and rate-limited tasks back in the order received", async () => {
  const url = `kv://${kvDir}/warm.sqlite`;
  const queue = `order-${crypto.randomUUID().slice(0, 8)}`;
  const app = new Celery({ broker: url, defaultQueue: queue });
  const ran: string[] = [];
  app.task("order.later", (n: string) => void ran.push(n));
  app.task("order.slow", { rateLimit: "1/m" }, (n: string) => void ran.push(n));
  const client = new Celery({ broker: url, defaultQueue: queue });
  // Received a, b, c, d, e: the later ones held for less long (the ETA queue runs earliest
  // first), d and e waiting for a token behind c's.
  await client.sendTask("order.later", ["a"], { countdown: 300 });
  await client.sendTask("order.later", ["b"], { countdown: 200 });
  await client.sendTask("order.slow", ["c"]);
  await client.sendTask("order.later", ["d"], { countdown: 100 });
  await client.sendTask("order.slow", ["e"]);
  const worker = new Worker({ app, pool: "inline", queues: [queue], prefetch: 10 });
  await worker.start();
  try {
    await until(() => ran.length === 1);
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    await worker.stop();
    await client.close();
  }
  assert.deepEqual(ran, ["c"]);
  assert.deepEqual(await queued(url, queue, 4), ["a", "b", "d", "e"]);
});

Deno.test("requeue order: a cold shutdown gives running and held tasks back together, in the order received", async () => {
  const url = `kv://${kvDir}/cold.sqlite`;
  const queue = `order-${crypto.randomUUID().slice(0, 8)}`;
  const app = new Celery({ broker: url, defaultQueue: queue });
  const release = Promise.withResolvers<void>();
  const started: string[] = [];
  app.task("order.later", (_n: string) => null);
  app.task("order.long", { acksLate: true }, async (n: string) => {
    started.push(n);
    await release.promise;
  });
  const client = new Celery({ broker: url, defaultQueue: queue });
  await client.sendTask("order.later", ["e"], { countdown: 300 });
  await client.sendTask("order.long", ["r1"]);
  await client.sendTask("order.long", ["r2"]);
  const worker = new Worker({ app, pool: "inline", concurrency: 2, queues: [queue], prefetch: 3 });
  await worker.start();
  try {
    await until(() => started.length === 2);
  } finally {
    await worker.terminate();
    release.resolve();
    await client.close();
  }
  assert.deepEqual(await queued(url, queue, 3), ["e", "r1", "r2"]);
});

Deno.test("requeue order: tasks of a Web Worker that died go back in the order received, not dispatched", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const st = new WorkerState(app, { app, rejectOnWorkerLost: true }, "test@host");
  const requeued: string[][] = [];
  st.broker = {
    requeue: (ds: Delivery[]) => (requeued.push(ds.map((d) => d.deliveryTag)), Promise.resolve()),
  } as unknown as Broker;
  const delivery = (tag: string) => ({ deliveryTag: tag }) as Delivery;
  const req = (id: string) => ({ id, task: "t.add" }) as never;
  // An ETA task received first is dispatched last, when due.
  st.running.set(1, {
    delivery: delivery("b"),
    req: req("b"),
    acked: false,
    ackEnded: false,
    started: 0,
    received: 2,
  });
  st.running.set(2, {
    delivery: delivery("c"),
    req: req("c"),
    acked: false,
    ackEnded: false,
    started: 0,
    received: 3,
  });
  st.running.set(3, {
    delivery: delivery("a"),
    req: req("a"),
    acked: false,
    ackEnded: false,
    started: 0,
    received: 1,
  });
  settleLost(st, [1, 2, 3], "its Web Worker died");
  await st.drainSettling();
  assert.deepEqual(requeued, [["a", "b", "c"]]);
});

/**
 * A KV app (tasks `order.now` and `order.later` record their argument in `ran`) whose takes
 * after the first `onTime` hand over what they took only once their signal aborted, plus
 * `lateMs`: as a Redis take script's reply arriving after the abort does. `held` resolves when
 * such a take holds its messages.
 */
async function lateTakeApp(name: string, late: { max?: number; onTime: number; lateMs: number }) {
  const url = `kv://${kvDir}/${name}.sqlite`;
  const queue = `order-${crypto.randomUUID().slice(0, 8)}`;
  const app = new Celery({ broker: url, defaultQueue: queue });
  const ran: string[] = [];
  app.task("order.later", (n: string) => void ran.push(n));
  app.task("order.now", (n: string) => void ran.push(n));
  const client = new Celery({ broker: url, defaultQueue: queue });
  const broker = await app.broker();
  const take = broker.take.bind(broker);
  const held = Promise.withResolvers<void>();
  let takes = 0;
  broker.take = async (queues, options) => {
    const max = late.max ?? options.max;
    const got = await take(queues, { max, signal: AbortSignal.timeout(5000) });
    if (++takes <= late.onTime) return got;
    held.resolve();
    const signal = options.signal!;
    if (!signal.aborted) await new Promise((r) => signal.addEventListener("abort", r));
    await new Promise((r) => setTimeout(r, late.lateMs));
    return got;
  };
  /** Start an inline worker, run `beforeTerminate` once a take holds, then cold shut down. */
  const coldShutdown = async (beforeTerminate?: () => Promise<void>) => {
    const worker = new Worker({ app, pool: "inline", queues: [queue], prefetch: 2 });
    await worker.start();
    try {
      await held.promise;
      await beforeTerminate?.();
      await worker.terminate();
    } finally {
      await app.close();
      await client.close();
    }
  };
  return { client, ran, coldShutdown, queued: (n: number) => queued(url, queue, n) };
}

Deno.test("requeue order: a cold shutdown while a take's reply is in flight puts what it took back too", async () => {
  const t = await lateTakeApp("inflight", { onTime: 0, lateMs: 0 });
  await t.client.sendTask("order.now", ["a"]);
  await t.client.sendTask("order.now", ["b"]);
  await t.coldShutdown();
  assert.deepEqual(t.ran, []);
  assert.deepEqual(await t.queued(2), ["a", "b"]);
});

Deno.test("requeue order: a batch whose take returns late in a cold shutdown goes back behind what was received before", async () => {
  // a, held for its ETA, is received first; the take of b replies only 100 ms after its
  // signal aborted (a slow network), once the cold shutdown put a back.
  const t = await lateTakeApp("late", { max: 1, onTime: 1, lateMs: 100 });
  await t.client.sendTask("order.later", ["a"], { countdown: 300 });
  await t.client.sendTask("order.now", ["b"]);
  await t.coldShutdown();
  assert.deepEqual(t.ran, []);
  assert.deepEqual(await t.queued(2), ["a", "b"]);
});

Deno.test("requeue order: an ETA task due while a cold shutdown waits for a late take goes back, not to the pool", async () => {
  // a is held for its ETA; the take of b replies 400 ms after its signal aborted, and a is
  // due 200 ms into that wait.
  const t = await lateTakeApp("due", { max: 1, onTime: 1, lateMs: 400 });
  const eta = new Date(Date.now() + 1000);
  await t.client.sendTask("order.later", ["a"], { eta });
  await t.client.sendTask("order.now", ["b"]);
  await t.coldShutdown(() => new Promise((r) => setTimeout(r, eta.getTime() - 200 - Date.now())));
  assert.deepEqual(t.ran, []);
  assert.deepEqual(await t.queued(2), ["a", "b"]);
});

Deno.test("requeue order: clean up", async () => {
  await Deno.remove(kvDir, { recursive: true });
});
