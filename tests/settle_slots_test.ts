/**
 * Which ended tasks keep their slots in the take budget while their
 * settlement is under way (WorkerState.slowSettling): an unacknowledged
 * delivery (late ack) always, until its settlement ends; an acknowledged
 * one (early ack) none while the settlement is prompt, from 50 ms on, and
 * while one waits out an outage. The early acknowledgements of tasks still
 * running hold none besides the running tasks' own. No server needed.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { retryWhileDown } from "../src/broker/outage.ts";
import type { Broker, Delivery } from "../src/broker/port.ts";
import type { TaskRequest } from "../src/protocol/task_request.ts";
import { takeBudget } from "../src/worker/consumer.ts";
import { Settlement } from "../src/worker/settlement.ts";
import { WorkerState } from "../src/worker/worker_state.ts";

function state(): WorkerState {
  const app = new Celery({ broker: "redis://127.0.0.1:1/0", backend: null });
  return new WorkerState(app, { app }, "slots@test");
}

function deliveries(n: number, acked: boolean): { delivery: Delivery; acked: boolean }[] {
  return Array.from({ length: n }, () => ({
    delivery: { deliveryTag: crypto.randomUUID() } as Delivery,
    acked,
  }));
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

Deno.test("a prompt settlement holds no slot for acknowledged deliveries; one under way for 50 ms does", async () => {
  const s = state();
  const g = gate();
  const start = performance.now();
  s.track(() => g.wait, { held: deliveries(3, true) });
  assert.equal(s.unsettledCount, 3);
  assert.equal(s.slowSettling(start), 0);
  assert.equal(s.slowSettling(start + 45), 0);
  assert.equal(s.slowSettling(performance.now() + 50), 3);
  g.open();
  await s.drainSettling();
  assert.equal(s.unsettledCount, 0);
  assert.equal(s.slowSettling(performance.now() + 1000), 0);
});

Deno.test("an unacknowledged delivery (late ack) holds its slot until its settlement ends, however prompt", async () => {
  const s = state();
  const late = gate();
  const early = gate();
  const start = performance.now();
  s.track(() => late.wait, { held: deliveries(2, false) });
  s.track(() => early.wait, { held: deliveries(3, true) });
  assert.equal(s.slowSettling(start), 2);
  assert.equal(s.slowSettling(start + 45), 2);
  assert.equal(s.slowSettling(performance.now() + 50), 5);
  late.open();
  early.open();
  await s.drainSettling();
  assert.equal(s.slowSettling(performance.now() + 1000), 0);
});

Deno.test("while a settlement waits out an outage, every settlement under way holds its slots", async () => {
  const s = state();
  const prompt = gate();
  s.track(() => prompt.wait, { held: deliveries(2, true) });
  let tries = 0;
  const down = gate();
  s.track(() =>
    retryWhileDown(() => {
      tries++;
      if (tries === 1) down.open();
      if (tries < 3) throw new BrokerConnectionError("redis://127.0.0.1:1/0", new Error("down"));
      return Promise.resolve();
    }, { limit: 5 }), { held: deliveries(1, true) });
  await down.wait;
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(s.outages.waiting, true);
  assert.equal(s.slowSettling(performance.now()), 3);
  prompt.open();
  await s.drainSettling();
  assert.equal(tries, 3);
  assert.equal(s.outages.waiting, false);
  assert.equal(s.slowSettling(), 0);
});

Deno.test("early acknowledgements of running tasks, slow to write, do not shrink the take", async () => {
  const s = state();
  const written = gate();
  s.broker = { ack: () => written.wait } as unknown as Broker;
  const start = performance.now();
  const acks = deliveries(3, false).map((d) => d.delivery);
  acks.forEach((delivery, i) =>
    s.running.set(i + 1, {
      delivery,
      req: {} as TaskRequest,
      acked: true,
      ackEnded: false,
      started: start,
      received: i,
    })
  );
  const batch = new Settlement();
  batch.acks.push(...acks);
  s.settle(batch);
  // As the consumer's take loop asks: 8 slots, 3 tasks running.
  const take = (now: number) =>
    takeBudget({
      capacity: 8,
      window: 8,
      running: s.running.size + s.slowSettling(now),
      etaHeld: 0,
      backlog: 0,
    }).free;
  assert.equal(take(start), 5);
  assert.equal(take(performance.now() + 50), 5, "the running tasks were counted twice");
  // A task ends while the acknowledgements are still being written: its result's settlement
  // holds its slot, once (the acknowledgement's settlement held it too before).
  s.running.delete(1);
  const result = gate();
  s.track(() => result.wait, { held: [{ delivery: acks[0], acked: true }] });
  assert.equal(take(performance.now() + 50), 5, "the ended task was counted twice");
  written.open();
  result.open();
  await s.drainSettling();
});
