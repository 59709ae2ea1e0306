/**
 * What a settlement under way keeps alive (WorkerState.track and settle):
 * not the acknowledged deliveries of the tasks it writes the results of,
 * not the deliveries whose early acknowledgement it writes once their
 * tasks ended; and, when it fails, it parks the messages of ended tasks
 * only. A worker draining a queue otherwise keeps every task's decoded
 * message past two scavenges, and V8 promotes one per task to its old
 * generation (issue 13: 0.8 KB/task promoted, a mark-compact, +10–20 MiB
 * RSS on a 20,000-task drain). No server needed; the collector is run
 * with `gc()` (exposed through node:v8).
 */

import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { Celery } from "../mod.ts";
import type { Broker, Delivery } from "../src/broker/port.ts";
import type { TaskRequest } from "../src/protocol/task_request.ts";
import { Settlement } from "../src/worker/settlement.ts";
import { WorkerState } from "../src/worker/worker_state.ts";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

function state(): WorkerState {
  const app = new Celery({ broker: "redis://127.0.0.1:1/0", backend: null });
  const s = new WorkerState(app, { app }, "retention@test");
  s.broker = { ack: () => Promise.resolve() } as unknown as Broker;
  return s;
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

/** A delivery carrying a body, and a weak reference to it. */
function delivery(): { delivery: Delivery; ref: WeakRef<Delivery> } {
  const d = {
    deliveryTag: crypto.randomUUID(),
    headers: {},
    body: new Uint8Array(4096),
  } as unknown as Delivery;
  return { delivery: d, ref: new WeakRef(d) };
}

/** Collect, after the current job (a WeakRef target is kept until it ends). */
async function collected(refs: WeakRef<object>[]): Promise<number> {
  await new Promise((r) => setTimeout(r, 0));
  gc();
  return refs.filter((r) => r.deref() === undefined).length;
}

Deno.test("a settlement under way keeps no acknowledged delivery it holds, and still counts it", async () => {
  const s = state();
  const g = gate();
  const weak = holdAcked(s, g.wait, 3);
  assert.equal(await collected(weak), 3);
  assert.equal(s.unsettledCount, 3);
  assert.equal(s.slowSettling(performance.now() + 50), 3);
  g.open();
  await s.drainSettling();
  assert.equal(s.unsettledCount, 0);
});

/** Track a settlement of `n` acknowledged deliveries, kept by nothing else. */
function holdAcked(s: WorkerState, until: Promise<void>, n: number): WeakRef<Delivery>[] {
  const made = Array.from({ length: n }, delivery);
  s.track(() => until, { held: made.map(({ delivery }) => ({ delivery, acked: true })) });
  return made.map((m) => m.ref);
}

Deno.test("an early acknowledgement under way keeps no delivery once its task ended", async () => {
  const s = state();
  const g = gate();
  // Keeps nothing once the command goes out (a Redis acknowledgement needs only the tags): what
  // is measured is what WorkerState and the settlement keep. Before, the settlement's acks list.
  s.broker = { ack: (_ds: Delivery[]) => g.wait } as unknown as Broker;
  const ref = startEarlyAcked(s);
  s.running.delete(1);
  assert.equal(await collected([ref]), 1);
  // Its slot was its task's, and is its result's settlement's once the task ended (`held`).
  assert.equal(s.unsettledCount, 0);
  assert.equal(s.unsettled.size, 0);
  g.open();
  await s.drainSettling();
  assert.equal(s.unsettledCount, 0);
});

/** Hand a task to the (absent) pool as dispatch number 1 and write its early acknowledgement. */
function startEarlyAcked(s: WorkerState): WeakRef<Delivery> {
  const d = delivery();
  s.running.set(1, {
    delivery: d.delivery,
    req: {} as TaskRequest,
    acked: true,
    ackEnded: false,
    started: 0,
    received: 0,
  });
  const batch = new Settlement();
  batch.acks.push(d.delivery);
  s.settle(batch);
  return d.ref;
}

Deno.test("a settlement that fails parks the messages of ended tasks, not those of running tasks", async () => {
  const s = state();
  const parked: Delivery[] = [];
  s.broker = {
    ack: () => Promise.reject(new Error("broker down")),
    reject: (rs: { delivery: Delivery }[]) => {
      for (const r of rs) parked.push(r.delivery);
      return Promise.resolve();
    },
  } as unknown as Broker;
  const running = delivery().delivery;
  const ended = delivery().delivery;
  s.running.set(1, {
    delivery: running,
    req: {} as TaskRequest,
    acked: true,
    ackEnded: false,
    started: 0,
    received: 0,
  });
  const batch = new Settlement();
  batch.acks.push(running, ended);
  s.settle(batch);
  assert.equal(s.unsettled.has(ended), true);
  assert.equal(s.unsettled.has(running), false);
  await s.drainSettling();
  assert.deepEqual(parked, [ended]);
  assert.equal(s.unsettledCount, 0);
});
