/**
 * A park is announced (its `rejected` event: logged, counted in the
 * worker's `parked`, sent as a task event) once it is written, and only
 * then: a park whose write fails leaves its message with the broker (it
 * comes back) and announces nothing. Parks on arrival (malformed,
 * unregistered, poison), of a refused outcome, and of the last resort.
 * Only those the broker says it parked are announced (one whose connection
 * is gone comes back instead); a broker resolving with nothing parked them
 * all. No server needed.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { captureLogs } from "./helpers/logs.ts";
import type { ResultBackend, StoreEntry } from "../src/backend/port.ts";
import type { Broker, Delivery, Rejection } from "../src/broker/port.ts";
import { Celery } from "../mod.ts";
import { DELIVERY_COUNT_HEADER } from "../src/broker/port.ts";
import { taskDelivery } from "./helpers/deliveries.ts";
import { Intake } from "../src/worker/intake.ts";
import { settleOrPark } from "../src/worker/last_resort.ts";
import { logLifecycle } from "../src/worker/lifecycle_log.ts";
import { settleOutcomes } from "../src/worker/outcomes.ts";
import { WorkerState } from "../src/worker/worker_state.ts";
import { countStats, zeroStats } from "../src/worker/worker_stats.ts";

/** A worker state whose parks fail while `down.parks` is set; what it announced and counted. */
function state() {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  app.task("t.add", (a: number, b: number) => a + b);
  const st = new WorkerState(app, { app, maxDeliveries: 3 }, "test@host");
  const stats = zeroStats();
  st.lifecycle.subscribe(countStats(stats));
  const rejected: string[] = [];
  st.lifecycle.subscribe((e) => {
    if (e.type === "rejected") rejected.push(`${e.taskId}:${e.kind}`);
  });
  const parked: Rejection[] = [];
  // `lost`: task ids whose deliveries the broker leaves out (their connection gone).
  const down = { parks: true, lost: new Set<string>() };
  st.broker = {
    reject: (r: Rejection[]) => {
      if (down.parks) return Promise.reject(new Error("park refused"));
      if (down.lost.size === 0) return (parked.push(...r), Promise.resolve());
      const written = r.filter((x) => !down.lost.has(x.taskId!));
      parked.push(...written);
      return Promise.resolve(written);
    },
    ack: () => Promise.resolve(),
  } as unknown as Broker;
  st.backend = {
    store: (_e: StoreEntry[]) => Promise.resolve(),
  } as unknown as ResultBackend;
  return { st, stats, rejected, parked, down };
}

/** A malformed, an unregistered and a poison message. */
function refusedOnArrival(): Delivery[] {
  return [
    taskDelivery("t.add", "bad", { eta: "not a date" }),
    taskDelivery("t.nope", "unreg"),
    // Counted on a redelivery only (a first delivery's header is not this broker's count).
    { ...taskDelivery("t.add", "poison", { [DELIVERY_COUNT_HEADER]: 3 }), redelivered: true },
  ];
}

Deno.test("parks on arrival are announced and counted once written, not when the write fails", async () => {
  const { st, stats, rejected, parked, down } = state();
  const intake = new Intake(st);
  await intake.receive(refusedOnArrival());
  await st.drainSettling();
  assert.deepEqual(rejected, [], "no park was written");
  assert.deepEqual([stats.parked, stats.received], [0, 0]);
  down.parks = false;
  await intake.receive(refusedOnArrival());
  await st.drainSettling();
  assert.deepEqual(parked.map((r) => r.taskId), ["bad", "unreg", "poison"]);
  assert.deepEqual(rejected, ["bad:malformed", "unreg:unregistered", "poison:poison"]);
  assert.deepEqual([stats.parked, stats.received], [3, 3]);
});

Deno.test("only the parks the broker wrote are announced and counted", async () => {
  const { st, stats, rejected, parked, down } = state();
  down.parks = false;
  down.lost.add("unreg");
  await new Intake(st).receive(refusedOnArrival());
  await st.drainSettling();
  assert.deepEqual(parked.map((r) => r.taskId), ["bad", "poison"]);
  assert.deepEqual(rejected, ["bad:malformed", "poison:poison"]);
  assert.equal(stats.parked, 2);
});

Deno.test("a refused outcome's park is announced once written, not when the write fails", async () => {
  const { st, stats, rejected, parked, down } = state();
  const refuse = (seq: number) => {
    const d = taskDelivery("t.add", `refused-${seq}`);
    const req = { id: `refused-${seq}`, task: "t.add", replyTo: null } as never;
    st.running.set(seq, {
      delivery: d,
      req,
      acked: false,
      ackEnded: false,
      started: 0,
      received: 0,
    });
    settleOutcomes(st, [{ seq, ok: false, refused: "undecodable body", runtime: 0 }]);
  };
  refuse(1);
  await st.drainSettling();
  assert.deepEqual([rejected, stats.parked], [[], 0]);
  down.parks = false;
  refuse(2);
  await st.drainSettling();
  assert.deepEqual(parked.map((r) => r.taskId), ["refused-2"]);
  assert.deepEqual([rejected, stats.parked], [["refused-2:refused"], 1]);
});

Deno.test("settleOrPark: an outcome whose settling throws is parked and announced once (event, log line), once written", async () => {
  const records = await captureLogs("info");
  try {
    const { st, stats, rejected, parked, down } = state();
    st.lifecycle.subscribe(logLifecycle(() => ["t.add"]));
    let calls = 0;
    const broken = () => {
      calls++;
      throw new TypeError("settle broke");
    };
    const settleBroken = (id: string) => {
      const req = { id, task: "t.add", replyTo: null } as never;
      st.running.set(1, {
        delivery: taskDelivery("t.add", id),
        req,
        acked: false,
        ackEnded: false,
        started: 0,
        received: 0,
      });
      settleOrPark(st, [{ seq: 1, ok: true, meta: "{}", runtime: 1 }], broken);
    };
    const parkLines = () =>
      records.map((r) => r.message.join("")).filter((l) => l.startsWith("Parked"));
    settleBroken("lost-1");
    await st.drainSettling();
    assert.deepEqual(
      [rejected, stats.parked, parkLines()],
      [[], 0, []],
      "its park was not written",
    );
    down.parks = false;
    settleBroken("bad-2");
    await st.drainSettling();
    assert.equal(calls, 4, "each time the batch, then the outcome alone");
    assert.deepEqual(parked.map((r) => r.taskId), ["bad-2"]);
    assert.deepEqual(rejected, ["bad-2:unsettled"]);
    assert.equal(stats.parked, 1);
    assert.deepEqual(parkLines(), [
      "Parked task t.add[bad-2]: worker error after the task ran: settle broke",
    ]);
  } finally {
    await reset();
  }
});

Deno.test("settleOrPark: a last-resort park the broker left out is not announced", async () => {
  const { st, stats, rejected, parked, down } = state();
  down.parks = false;
  down.lost.add("lost-1");
  st.running.set(1, {
    delivery: taskDelivery("t.add", "lost-1"),
    req: { id: "lost-1", task: "t.add", replyTo: null } as never,
    acked: false,
    ackEnded: false,
    started: 0,
    received: 0,
  });
  settleOrPark(st, [{ seq: 1, ok: true, meta: "{}", runtime: 1 }], () => {
    throw new TypeError("settle broke");
  });
  await st.drainSettling();
  assert.deepEqual([parked, rejected, stats.parked], [[], [], 0]);
});
