/**
 * The worker's last-resort handlers: an error thrown while receiving a
 * batch or settling outcomes parks what cannot be handled (with a FAILURE
 * for its task id) instead of ending the process or losing the delivery.
 */

import { recordingState } from "./helpers/recording_state.ts";
import assert from "node:assert/strict";
import type { ResultBackend, StoreEntry } from "../src/backend/port.ts";
import {
  type Broker,
  DELIVERY_COUNT_HEADER,
  type PublishTarget,
  type Rejection,
} from "../src/broker/port.ts";
import type { RunOutcome } from "../src/worker/executor.ts";
import { Intake } from "../src/worker/intake.ts";
import { DEFAULT_MAX_DELIVERIES } from "../src/worker/screening.ts";
import type { Pool } from "../src/worker/pool.ts";
import { receiveOrPark, settleOrPark } from "../src/worker/last_resort.ts";
import { Settlement } from "../src/worker/settlement.ts";
import { settleOutcomes } from "../src/worker/outcomes.ts";
import type { Message, SignatureDict } from "../src/protocol/message.ts";
import type { WorkerState } from "../src/worker/worker_state.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { headerDelivery, taskDelivery } from "./helpers/deliveries.ts";
import { BrokerConnectionError, ExchangeNotFoundError } from "../src/broker/errors.ts";

const delivery = headerDelivery;

/**
 * A settlement publishing follow-ups `m-0` … `m-<n-1>` of `t.add`, each to
 * queue `q` unless `targetOf` gives another target.
 */
function followUps(
  n: number,
  targetOf: (i: number) => PublishTarget | undefined = () => undefined,
): Settlement {
  const s = new Settlement();
  for (let i = 0; i < n; i++) {
    const message = encodeTaskMessage({
      task: "t.add",
      id: `m-${i}`,
      args: [i],
      kwargs: {},
      now: new Date(),
      origin: "test@host",
      replyTo: "",
    });
    s.publishes.push({ message, target: targetOf(i) ?? { routingKey: "q" }, taskId: `m-${i}` });
  }
  return s;
}

const state = recordingState;

Deno.test("a batch whose intake throws is parked, with a FAILURE for each task id", async () => {
  const { st, parked, stored, stats } = state();
  const held = delivery("held");
  const intake = {
    receive: () => Promise.reject(new RangeError("Maximum call stack size exceeded")),
    holding: () => [held],
  } as unknown as Intake;
  const batch = [delivery("a"), delivery("b"), held];
  st.running.set(1, {
    delivery: batch[1],
    req: {} as never,
    acked: false,
    ackEnded: false,
    started: 0,
    received: 0,
  });
  await receiveOrPark(st, intake, batch);
  await st.drainSettling();
  assert.deepEqual(parked.map((r) => r.taskId), ["a", "b"], "the held one stays held");
  assert.match(parked[0].reason, /worker error while receiving it: Maximum call stack/);
  assert.deepEqual(stored.map((e) => [e.taskId, e.status]), [["a", "FAILURE"], ["b", "FAILURE"]]);
  assert.equal(st.running.size, 0, "a prepared but never handed over task is taken back");
  assert.equal(stats.parked, 2, "each park counted once");
  assert.equal(stats.received, 1, "b was received (handed to the pool); a ends on arrival");
});

Deno.test("a batch whose pool hand-over throws is parked; what the intake ended is settled as it would be", async () => {
  const { st, parked, stats, stored, acked } = state();
  st.app.task("t.add", (a: number, b: number) => a + b);
  st.pool = {
    run: () => {
      throw new RangeError("pool broke");
    },
  } as unknown as Pool;
  st.revoked.add(["revoked"], Date.now() + 60_000);
  const intake = new Intake(st);
  const rejected: string[] = [];
  st.lifecycle.subscribe((e) => {
    if (e.type === "rejected") rejected.push(`${e.taskId}:${e.kind}`);
  });
  const batch = [
    taskDelivery("t.nope", "unreg"),
    taskDelivery("t.add", "revoked"),
    taskDelivery("t.add", "good"),
  ];
  await receiveOrPark(st, intake, batch);
  await st.drainSettling();
  // Before: the revoked one was parked too (with a FAILURE), its REVOKED never stored.
  assert.deepEqual(parked.map((r) => r.taskId), ["unreg", "good"], "each parked once");
  assert.deepEqual(stored.map((e) => [e.taskId, e.status]), [
    ["unreg", "FAILURE"],
    ["revoked", "REVOKED"],
    ["good", "FAILURE"],
  ]);
  assert.deepEqual(acked.map((d) => d.headers.id), ["revoked"]);
  assert.deepEqual(rejected, ["unreg:unregistered", "good:unsettled"], "each announced once");
  assert.deepEqual([stats.received, stats.parked, stats.revoked], [3, 2, 1]);
});

Deno.test("a suppressed duplicate in a batch whose pool hand-over throws is acknowledged, its result kept", async () => {
  const { st, parked, stored, acked } = state();
  st.backend = {
    store: (e: StoreEntry[]) => (stored.push(...e), Promise.resolve()),
    get: (id: string) =>
      Promise.resolve(id === "dup" ? { taskId: id, status: "SUCCESS", result: 3 } : null),
  } as unknown as ResultBackend;
  st.app.task("t.add", (a: number, b: number) => a + b);
  st.pool = {
    run: () => {
      throw new RangeError("pool broke");
    },
  } as unknown as Pool;
  const dup = { ...taskDelivery("t.add", "dup"), redelivered: true };
  await receiveOrPark(st, new Intake(st), [dup, taskDelivery("t.add", "good")]);
  await st.drainSettling();
  // Before: the duplicate was parked with a FAILURE over its SUCCESS (requeued, it runs again).
  assert.deepEqual(parked.map((r) => r.taskId), ["good"]);
  assert.deepEqual(stored.map((e) => [e.taskId, e.status]), [["good", "FAILURE"]]);
  assert.deepEqual(acked, [dup]);
});

Deno.test("a lifecycle listener that throws on the park's announcement does not stop the batch's parking", async () => {
  const { st, parked, stats } = state();
  st.lifecycle.subscribe((e) => {
    if (e.type === "rejected") throw new TypeError("listener broke");
  });
  const intake = {
    receive: () => Promise.reject(new TypeError("listener broke")),
    holding: () => [],
  } as unknown as Intake;
  await receiveOrPark(st, intake, [delivery("a"), delivery("b")]);
  await st.drainSettling();
  assert.deepEqual(parked.map((r) => r.taskId), ["a", "b"]);
  assert.equal(stats.parked, 2, "the subscribers before the broken one were told");
});

Deno.test("a poison message whose announcement throws is parked and announced once", async () => {
  const { st, parked, stats } = state();
  st.app.task("t.add", (a: number, b: number) => a + b);
  st.pool = { run: () => {} } as unknown as Pool;
  let throws = true;
  st.lifecycle.subscribe((e) => {
    if (e.type !== "rejected" || !throws) return;
    throws = false;
    throw new TypeError("listener broke");
  });
  // Counted on a redelivery only.
  const poison = { ...taskDelivery("t.add", "poison"), redelivered: true };
  poison.headers[DELIVERY_COUNT_HEADER] = DEFAULT_MAX_DELIVERIES;
  await receiveOrPark(st, new Intake(st), [poison]);
  await st.drainSettling();
  // Before: the intake's announcement threw before it noted the delivery announced, so the last
  // resort parked and announced it again (2 parks counted for 1 message).
  assert.deepEqual(parked.map((r) => r.taskId), ["poison"]);
  assert.equal(stats.parked, 1, "one park, counted once");
});

Deno.test("a delivery whose routing throws is parked alone; its batch-mates go to the pool", async () => {
  const { st, parked, stored } = state();
  st.app.task("t.add", (a: number, b: number) => a + b);
  const ran: string[] = [];
  st.pool = {
    run: (runs: { id: string }[]) => ran.push(...runs.map((r) => r.id)),
  } as unknown as Pool;
  st.lifecycle.subscribe((e) => {
    if (e.type === "received" && e.req.id === "bad") throw new TypeError("listener broke");
  });
  const batch = ["a", "bad", "b"].map((id) => taskDelivery("t.add", id));
  await receiveOrPark(st, new Intake(st), batch);
  await st.drainSettling();
  // Before: the intake threw for the batch and all three were parked.
  assert.deepEqual(ran, ["a", "b"]);
  assert.deepEqual(parked.map((r) => r.taskId), ["bad"]);
  assert.match(parked[0].reason, /worker error while receiving it: listener broke/);
  assert.deepEqual(stored.map((e) => [e.taskId, e.status]), [["bad", "FAILURE"]]);
});

Deno.test("outcomes that cannot be settled are stored and parked one by one; the others settle normally", async () => {
  const { st, parked, acked, stored, stats } = state();
  const d1 = delivery("ok-1");
  const d2 = delivery("bad-2");
  const req = (id: string) => ({ id, task: "t.add", rootId: id, replyTo: null }) as never;
  st.running.set(1, {
    delivery: d1,
    req: req("ok-1"),
    acked: false,
    ackEnded: false,
    started: 0,
    received: 0,
  });
  st.running.set(2, {
    delivery: d2,
    req: req("bad-2"),
    acked: false,
    ackEnded: false,
    started: 0,
    received: 0,
  });
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
  assert.deepEqual([stats.parked, stats.received], [1, 0], "parked counted; received before");
});

Deno.test("outcomes settled before the one that throws are not announced again by the fallback", async () => {
  const { st, parked, stored, stats } = state();
  st.lifecycle.subscribe((e) => {
    if (e.type === "succeeded" && e.req.id === "b") throw new TypeError("listener broke");
  });
  const req = (id: string) => ({ id, task: "t.add", rootId: id, replyTo: null }) as never;
  st.running.set(1, {
    delivery: delivery("a"),
    req: req("a"),
    acked: false,
    ackEnded: false,
    started: 0,
    received: 0,
  });
  st.running.set(2, {
    delivery: delivery("b"),
    req: req("b"),
    acked: false,
    ackEnded: false,
    started: 1,
    received: 1,
  });
  const meta = (id: string) => encodeResultMeta({ taskId: id, status: "SUCCESS", result: 5 });
  settleOrPark(st, [
    { seq: 1, ok: true, meta: meta("a"), runtime: 1 },
    { seq: 2, ok: true, meta: meta("b"), runtime: 1 },
  ], settleOutcomes);
  await st.drainSettling();
  // Before: a's success announced twice (and b's, whose listener threw, too), b then parked: 5
  // for 2 tasks. The fallback settles what the first pass announced without announcing it.
  assert.deepEqual([stats.succeeded, stats.parked], [2, 0], "each task counted once");
  assert.deepEqual(parked, []);
  assert.deepEqual(stored.map((e) => [e.taskId, e.status]), [["a", "SUCCESS"], ["b", "SUCCESS"]]);
});

/** Settles the stored results and acks of u-1 and u-2 on a backend that refuses every write. */
async function settleUnwritable(st: WorkerState): Promise<void> {
  st.backend = {
    store: () => Promise.reject(new BrokerConnectionError("result backend down")),
  } as unknown as ResultBackend;
  const s = new Settlement();
  for (const id of ["u-1", "u-2"]) {
    s.stores.push({ taskId: id, status: "SUCCESS", meta: "{}" });
    s.acks.push(delivery(id));
  }
  st.settle(s);
  await st.drainSettling();
}

Deno.test("a settlement that cannot be written parks its acknowledged deliveries, each counted once", async () => {
  const { st, parked, stats } = state();
  await settleUnwritable(st);
  assert.deepEqual(parked.map((r) => r.taskId), ["u-1", "u-2"]);
  assert.match(parked[0].reason, /could not be written within outageRetryLimit/);
  assert.deepEqual([stats.parked, stats.received], [2, 0]);
});

Deno.test("a settlement that cannot be written: only the parks the broker wrote are announced", async () => {
  const { st, stats } = state();
  const announced: string[] = [];
  st.lifecycle.subscribe((e) => {
    if (e.type === "rejected") announced.push(`${e.taskId}:${e.kind}`);
  });
  // u-1's connection is gone (as on RabbitMQ): the broker leaves it out, it comes back.
  st.broker = {
    reject: (r: Rejection[]) => Promise.resolve(r.filter((x) => x.taskId !== "u-1")),
  } as unknown as Broker;
  await settleUnwritable(st);
  assert.deepEqual(announced, ["u-2:unsettled"]);
  assert.equal(stats.parked, 1);
});

Deno.test("a settlement whose store fails still writes the early acks of running tasks; it parks the ended ones", async () => {
  const { st, parked, acked } = state();
  st.backend = {
    store: () => Promise.reject(new BrokerConnectionError("result backend down")),
  } as unknown as ResultBackend;
  const live = delivery("run-1");
  const req = { id: "run-1", task: "t.add" } as never;
  st.running.set(1, { delivery: live, req, acked: true, ackEnded: false, started: 0, received: 0 });
  // The intake's batch: STARTED for the task it started, and a task revoked on arrival.
  const s = new Settlement();
  s.stores.push({ taskId: "run-1", status: "STARTED", meta: "{}" });
  s.acks.push(live, delivery("revoked-2"));
  st.settle(s);
  await st.drainSettling();
  assert.deepEqual(
    acked.map((d) => d.deliveryTag),
    ["tag-run-1"],
    "the running task's early ack is written",
  );
  assert.deepEqual(
    parked.map((r) => r.taskId),
    ["revoked-2"],
    "the ended task's delivery is parked",
  );
});

Deno.test("a follow-up that cannot be encoded gets a FAILURE; the others are sent and every delivery acknowledged", async () => {
  const { st, parked, acked, stored } = state();
  const sent: string[] = [];
  st.publish = (
    m: Message,
    _t: PublishTarget,
  ) => (sent.push(String(m.headers.id)), Promise.resolve());
  const link = (id: string): SignatureDict => ({
    task: "t.echo",
    args: [],
    kwargs: {},
    options: { task_id: id },
    subtask_type: null,
    immutable: false,
  });
  const req = (id: string) =>
    ({ id, task: "t.add", rootId: id, replyTo: null, headers: {}, group: null }) as never;
  const meta = (id: string) => encodeResultMeta({ taskId: id, status: "SUCCESS", result: 5 });
  const embed = (id: string) => ({
    callbacks: [link(id)],
    errbacks: null,
    chain: null,
    chord: null,
  });
  st.running.set(1, {
    delivery: delivery("ok-1"),
    req: req("ok-1"),
    acked: false,
    ackEnded: false,
    started: 0,
    received: 0,
  });
  st.running.set(2, {
    delivery: delivery("raw-2"),
    req: req("raw-2"),
    acked: false,
    ackEnded: false,
    started: 0,
    received: 0,
  });
  const outcomes: RunOutcome[] = [
    {
      seq: 1,
      ok: true,
      meta: meta("ok-1"),
      runtime: 1,
      followUp: { embed: embed("cb-1"), value: 5 },
    },
    // A msgpack result (raw bytes) handed to a callback sent as JSON: its message cannot be encoded.
    {
      seq: 2,
      ok: true,
      meta: meta("raw-2"),
      runtime: 1,
      followUp: { embed: embed("cb-2"), value: new Uint8Array([1, 2]) },
    },
  ];
  settleOrPark(st, outcomes, settleOutcomes);
  await st.drainSettling();
  assert.deepEqual(sent, ["cb-1"]);
  assert.deepEqual(acked.map((d) => d.deliveryTag).sort(), ["tag-ok-1", "tag-raw-2"]);
  assert.deepEqual(parked, []);
  const failure = stored.find((e) => e.taskId === "cb-2");
  assert.equal(failure?.status, "FAILURE");
  assert.match(failure.meta, /"exc_type": "EncodeError".*Raw bytes cannot be sent as JSON/);
});

Deno.test("a batch of follow-ups interrupted by an outage is finished without sending any twice (no publishMany)", async () => {
  const { st, acked } = state();
  const sent: string[] = [];
  let failed = false;
  // RabbitMQ or KV (no broker publishMany): the connection drops while the third message is sent.
  (st.app as unknown as { publish: unknown }).publish = (m: Message) => {
    const id = String(m.headers.id);
    if (id === "m-2" && !failed) {
      failed = true;
      return Promise.reject(new BrokerConnectionError("amqp://127.0.0.1:1", new Error("reset")));
    }
    sent.push(id);
    return Promise.resolve();
  };
  const s = followUps(5);
  s.acks.push(delivery("parent"));
  st.settle(s);
  await st.drainSettling();
  assert.ok(failed);
  assert.deepEqual(sent.toSorted(), ["m-0", "m-1", "m-2", "m-3", "m-4"]);
  assert.deepEqual(acked.map((d) => d.deliveryTag), ["tag-parent"]);
});

Deno.test("follow-ups to a missing exchange fail alone: the others are sent, every delivery acknowledged", async () => {
  // RabbitMQ refuses a batch naming a missing exchange before writing anything; before, that
  // failed the settlement: no delivery of the batch was acknowledged.
  const { st, acked, stored } = state();
  const sent: string[] = [];
  const publish = (m: Message, target: PublishTarget) => {
    if (target.exchange === "missing") {
      return Promise.reject(new ExchangeNotFoundError("missing", target.routingKey));
    }
    sent.push(String(m.headers.id));
    return Promise.resolve();
  };
  const app = st.app as unknown as { publish: unknown; publishMany: unknown };
  app.publish = publish;
  app.publishMany = (batch: readonly { message: Message; target: PublishTarget }[]) =>
    batch.some((p) => p.target.exchange === "missing")
      ? Promise.reject(new ExchangeNotFoundError("missing", "q"))
      : Promise.all(batch.map((p) => publish(p.message, p.target))).then(() => {});
  const s = followUps(4, (i) => i === 1 ? { exchange: "missing", routingKey: "q" } : undefined);
  s.acks.push(delivery("parent-1"), delivery("parent-2"));
  st.settle(s);
  await st.drainSettling();
  assert.deepEqual(sent, ["m-0", "m-2", "m-3"]);
  assert.deepEqual(acked.map((d) => d.deliveryTag), ["tag-parent-1", "tag-parent-2"]);
  const failure = stored.find((e) => e.taskId === "m-1");
  assert.equal(failure?.status, "FAILURE");
  assert.match(failure.meta, /"exc_type": "ExchangeNotFoundError"/);
});
