/**
 * Bounds of the early acknowledgement written as a task starts: on a broker
 * without leases (AMQP) a task handed over more than `etaHoldLimit` ago is
 * acknowledged, started or not, so that RabbitMQ's `consumer_timeout` never
 * closes the channel; on a broker with leases it waits for its start. And a
 * task that asks to be retried before its start was read is acknowledged as
 * one whose start was: a retry that cannot be published stores a FAILURE and
 * parks nothing. No server: a broker and a backend that record.
 */

import assert from "node:assert/strict";
import type { ResultBackend, StoreEntry } from "../src/backend/port.ts";
import type { Broker, Delivery, Rejection } from "../src/broker/port.ts";
import { Celery } from "../mod.ts";
import { decodeTaskHeaders } from "../src/protocol/task_request.ts";
import { settleOutcomes } from "../src/worker/outcomes.ts";
import type { Pool } from "../src/worker/pool.ts";
import { WorkerState } from "../src/worker/worker_state.ts";
import { taskDelivery } from "./helpers/deliveries.ts";
import { until } from "./helpers/waits.ts";

/**
 * A worker's state whose broker (leases or not) and backend record, whose pool
 * reports no task started, with ETA hold limit `limit` seconds.
 */
function recording(visibilityTimeout: number | null, limit = 600) {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const st = new WorkerState(app, { app, etaHoldLimit: limit }, "test@host");
  const acked: Delivery[] = [];
  const parked: Rejection[] = [];
  const stored: StoreEntry[] = [];
  st.broker = {
    visibilityTimeout,
    reject: (r: Rejection[]) => (parked.push(...r), Promise.resolve()),
    ack: (d: Delivery[]) => (acked.push(...d), Promise.resolve()),
  } as unknown as Broker;
  st.backend = {
    store: (e: StoreEntry[]) => (stored.push(...e), Promise.resolve()),
  } as unknown as ResultBackend;
  st.pool = { run: () => {}, started: () => false } as unknown as Pool;
  return { app, st, acked, parked, stored };
}

/** Hand running task `id` (early ack, not acknowledged) to `st`, `ago` ms ago. */
function handed(st: WorkerState, seq: number, id: string, ago: number): Delivery {
  const delivery = taskDelivery("t.add", id);
  st.running.set(seq, {
    delivery,
    req: decodeTaskHeaders(delivery),
    acked: false,
    acksEarly: true,
    ackEnded: false,
    started: performance.now() - ago,
    received: seq,
  });
  return delivery;
}

Deno.test("early ack, no leases: a task handed over longer than etaHoldLimit ago is acknowledged unstarted", async () => {
  const { app, st, acked } = recording(null, 0.5);
  try {
    const old = handed(st, 1, "old", 1000);
    handed(st, 2, "new", 0);
    st.startAcks.watch(1);
    st.startAcks.watch(2);
    // Before: never acknowledged until it started, however long it waited.
    await until("the task handed over 1 s ago acknowledged", () => acked.length > 0);
    assert.deepEqual(acked, [old], "the one handed over just now still waits for its start");
    assert.equal(st.running.get(1)!.acked, true);
    assert.equal(st.running.get(2)!.acked, false);
  } finally {
    st.startAcks.close();
    await st.drainSettling();
    await app.close();
  }
});

Deno.test("early ack, leases: a task not started is not acknowledged, however long ago it was handed over", async () => {
  const { app, st, acked } = recording(2000, 0.05);
  try {
    handed(st, 1, "old", 60_000);
    st.startAcks.watch(1);
    // Ten start reads: its lease is renewed while it waits.
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(acked, []);
    assert.equal(st.startAcks.size, 1);
  } finally {
    st.startAcks.close();
    await app.close();
  }
});

Deno.test("early ack: a retry raised before its start was read, whose republish fails, stores FAILURE and parks nothing", async () => {
  const { app, st, acked, parked, stored } = recording(2000);
  let tries = 0;
  st.publish = () => (tries++, Promise.reject(new Error("publish refused")));
  try {
    const d = handed(st, 1, "retried", 0);
    settleOutcomes(st, [{
      seq: 1,
      ok: false,
      runtime: 0.01,
      retry: {
        args: [1, 2],
        kwargs: {},
        retries: 1,
        eta: new Date(),
        when: "now",
        embed: { callbacks: null, errbacks: null, chain: null, chord: null },
      },
    }]);
    await st.drainSettling();
    assert.equal(tries, 1, "its republish was tried");
    // Before: treated as late ack, its delivery parked.
    assert.deepEqual(parked, []);
    assert.deepEqual(acked, [d]);
    assert.deepEqual(stored.map((e) => [e.taskId, e.status]), [["retried", "FAILURE"]]);
  } finally {
    await app.close();
  }
});
