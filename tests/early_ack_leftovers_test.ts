/**
 * An early acknowledgement leaves nothing behind in the worker's state once
 * its task has ended, on the paths where the bookkeeping of its write
 * (whether it is written yet, which keeps the lease of its running task
 * renewed) used to outlive it: a Redis delivery handed out early and given
 * a new tag by its take script while its task's STARTED is stored, and a
 * batch whose hand-over to the pool throws (parked by `receiveOrPark`).
 * Real brokers: Redis under a prefix of its own, and KV in memory.
 */

import assert from "node:assert/strict";
import type { ResultBackend, StoreEntry } from "../src/backend/port.ts";
import type { Broker } from "../src/broker/port.ts";
import { openKvBroker } from "../src/broker/kv.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { Celery } from "../mod.ts";
import type { RunRequest } from "../src/worker/executor.ts";
import { Intake } from "../src/worker/intake.ts";
import { receiveOrPark } from "../src/worker/last_resort.ts";
import { settleOutcomes } from "../src/worker/outcomes.ts";
import type { Pool } from "../src/worker/pool.ts";
import { WorkerState } from "../src/worker/worker_state.ts";
import { uniqueQueue } from "./broker_conformance.ts";
import { addMessage } from "./helpers/deliveries.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/** A worker's state on `broker`, whose `t.add` tracks STARTED, and a pool that only records. */
function workerOn(broker: Broker, backend: ResultBackend) {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  app.task("t.add", { trackStarted: true }, (a: number, b: number) => a + b);
  const st = new WorkerState(app, { app }, "test@host");
  st.broker = broker;
  st.backend = backend;
  const runs: RunRequest[] = [];
  st.pool = { run: (reqs: RunRequest[]) => void runs.push(...reqs) } as unknown as Pool;
  return { app, st, runs };
}

/**
 * What the state still holds: the size of each of its collections (its own
 * fields that are a `Set` or a `Map`, and its running tasks) that is not empty.
 */
function leftovers(st: WorkerState): Record<string, number> {
  const out: Record<string, number> = {};
  if (st.running.size) out.running = st.running.size;
  for (const [name, v] of Object.entries(st)) {
    if ((v instanceof Set || v instanceof Map) && v.size > 0) out[name] = v.size;
  }
  return out;
}

Deno.test({
  name: "early ack: a Redis delivery its take script gives a new tag while STARTED is stored " +
    "leaves nothing behind once its task ended",
  ignore: WITHOUT_REDIS,
}, async () => {
  const p = uniquePrefix("early-ack-retag");
  const q = uniqueQueue("early-ack-retag");
  const broker = await openRedisBroker(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(p)}`);
  const r = await rawRedis();
  const gate = Promise.withResolvers<void>();
  const stored: StoreEntry[] = [];
  const backend = {
    store: async (e: StoreEntry[]) => {
      await gate.promise;
      stored.push(...e);
    },
    get: () => Promise.resolve(null),
  } as unknown as ResultBackend;
  const { app, st, runs } = workerOn(broker, backend);
  try {
    // Taken while the queue is empty: the wait claims it and hands it out before its take script.
    const taking = broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    await new Promise((res) => setTimeout(res, 20));
    await broker.publish(addMessage("retag"), { routingKey: q });
    const got = await taking;
    assert.equal(got.length, 1);
    const old = got[0].deliveryTag;
    // Another consumer's entry holds its tag: its take script records it under a new one.
    await r.hset(`${p}unacked`, old, "another consumer's entry");
    await r.zadd(`${p}unacked_index`, Date.now() / 1000, old);
    await new Intake(st).receive(got);
    assert.equal(runs.length, 1, "handed to the pool, its STARTED being stored");
    // The next take sends the take script of the early hand-out, which gives it its new tag.
    assert.deepEqual(await broker.take([q], { max: 10, signal: AbortSignal.timeout(300) }), []);
    assert.notEqual(got[0].deliveryTag, old, "retagged by the take script");
    const running = st.running.get(runs[0].seq)!;
    assert.equal(running.ackEnded, false, "its lease renewed until its acknowledgement is written");
    gate.resolve();
    await st.drainSettling();
    assert.deepEqual(stored.map((e) => e.status), ["STARTED"]);
    assert.equal(await r.hget(`${p}unacked`, got[0].deliveryTag), null, "acknowledged");
    assert.equal(running.ackEnded, true, "written: its lease is no longer renewed");
    settleOutcomes(st, [{ seq: runs[0].seq, ok: true, stored: true, runtime: 0 }]);
    await st.drainSettling();
    // Before: { ackPending: 1 }, its old tag, for ever.
    assert.deepEqual(leftovers(st), {});
  } finally {
    gate.resolve();
    await broker.close();
    await app.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test("early ack: a batch whose hand-over to the pool throws leaves nothing behind once parked", async () => {
  const broker = await openKvBroker("kv://:memory:");
  const backend = {
    store: () => Promise.resolve(),
    get: () => Promise.resolve(null),
  } as unknown as ResultBackend;
  const { app, st } = workerOn(broker, backend);
  st.pool = {
    run: () => {
      throw new RangeError("pool broke");
    },
  } as unknown as Pool;
  try {
    const q = uniqueQueue("early-ack-park");
    await broker.publish(addMessage("a"), { routingKey: q });
    await broker.publish(addMessage("b"), { routingKey: q });
    const got = await broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    assert.equal(got.length, 2);
    await receiveOrPark(st, new Intake(st), got);
    await st.drainSettling();
    const parked = await broker.listParked({ limit: 10 });
    assert.deepEqual(parked.map((m) => m.taskId).sort(), ["a", "b"]);
    // Before: { ackPending: 2 }, their tags, for ever.
    assert.deepEqual(leftovers(st), {});
  } finally {
    await broker.close();
    await app.close();
  }
});
