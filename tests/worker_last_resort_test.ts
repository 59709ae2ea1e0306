/**
 * The worker's last-resort handlers: an error thrown while receiving a
 * batch or settling outcomes parks what cannot be handled (with a FAILURE
 * for its task id) instead of ending the process or losing the delivery.
 */

import assert from "node:assert/strict";
import type { ResultBackend, StoreEntry } from "../src/backend/port.ts";
import type { Broker, Delivery, Rejection } from "../src/broker/port.ts";
import { Celery } from "../mod.ts";
import type { RunOutcome } from "../src/worker/executor.ts";
import type { Intake } from "../src/worker/intake.ts";
import { receiveOrPark, settleOrPark } from "../src/worker/last_resort.ts";
import { Settlement } from "../src/worker/settlement.ts";
import { WorkerState } from "../src/worker/worker_state.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";

function delivery(id: string): Delivery {
  return {
    body: new Uint8Array(),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { id, task: "t.add" },
    properties: {},
    queue: "q",
    deliveryTag: `tag-${id}`,
    redelivered: false,
    exchange: "",
    routingKey: "q",
  };
}

function state() {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const st = new WorkerState(app, { app }, "test@host");
  const parked: Rejection[] = [];
  const acked: Delivery[] = [];
  const stored: StoreEntry[] = [];
  st.broker = {
    reject: (r: Rejection[]) => (parked.push(...r), Promise.resolve()),
    ack: (d: Delivery[]) => (acked.push(...d), Promise.resolve()),
  } as unknown as Broker;
  st.backend = {
    store: (e: StoreEntry[]) => (stored.push(...e), Promise.resolve()),
  } as unknown as ResultBackend;
  return { st, parked, acked, stored };
}

Deno.test("a batch whose intake throws is parked, with a FAILURE for each task id", async () => {
  const { st, parked, stored } = state();
  const held = delivery("held");
  const intake = {
    receive: () => Promise.reject(new RangeError("Maximum call stack size exceeded")),
    holding: () => [held],
  } as unknown as Intake;
  const batch = [delivery("a"), delivery("b"), held];
  st.running.set(1, { delivery: batch[1], req: {} as never, acked: false, started: 0 });
  await receiveOrPark(st, intake, batch);
  await st.drainSettling();
  assert.deepEqual(parked.map((r) => r.taskId), ["a", "b"], "the held one stays held");
  assert.match(parked[0].reason, /worker error while receiving it: Maximum call stack/);
  assert.deepEqual(stored.map((e) => [e.taskId, e.status]), [["a", "FAILURE"], ["b", "FAILURE"]]);
  assert.equal(st.running.size, 0, "a prepared but never handed over task is taken back");
});

Deno.test("outcomes that cannot be settled are stored and parked one by one; the others settle normally", async () => {
  const { st, parked, acked, stored } = state();
  const d1 = delivery("ok-1");
  const d2 = delivery("bad-2");
  const req = (id: string) => ({ id, task: "t.add", rootId: id, replyTo: null }) as never;
  st.running.set(1, { delivery: d1, req: req("ok-1"), acked: false, started: 0 });
  st.running.set(2, { delivery: d2, req: req("bad-2"), acked: false, started: 0 });
  const meta = (id: string) => encodeResultMeta({ taskId: id, status: "SUCCESS", result: 5 });
  const outcomes: RunOutcome[] = [
    { seq: 1, ok: true, meta: meta("ok-1"), runtime: 1 },
    { seq: 2, ok: true, meta: meta("bad-2"), runtime: 1 },
  ];
  let calls = 0;
  // Throws once the second outcome is reached, as a follow-up that cannot be built would.
  const flaky = (s: WorkerState, outs: RunOutcome[]) => {
    calls++;
    if (outs.some((o) => o.seq === 2)) {
      s.running.delete(1);
      throw new TypeError("A task message needs a non-empty task name");
    }
    // The normal path, as settleOutcomes would do it for a plain success.
    const batch = new Settlement();
    for (const o of outs) {
      const r = s.running.get(o.seq)!;
      s.running.delete(o.seq);
      batch.stores.push({ taskId: r.req.id, status: "SUCCESS", meta: o.meta! });
      batch.acks.push(r.delivery);
    }
    s.settle(batch);
  };
  settleOrPark(st, outcomes, flaky);
  await st.drainSettling();
  assert.equal(calls, 3, "the batch, then each outcome alone");
  assert.deepEqual(acked.map((d) => d.deliveryTag), ["tag-ok-1"]);
  assert.deepEqual(parked.map((r) => r.taskId), ["bad-2"]);
  assert.match(parked[0].reason, /worker error after the task ran: A task message needs/);
  assert.deepEqual(stored.map((e) => [e.taskId, e.status]).sort(), [
    ["bad-2", "SUCCESS"],
    ["ok-1", "SUCCESS"],
  ]);
  assert.equal(st.running.size, 0);
});
