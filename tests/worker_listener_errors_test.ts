/**
 * A lifecycle listener that throws after the worker has taken a step (a
 * task handed to the pool, settled at intake, its outcome settled) is
 * logged: it neither parks the task's batch-mates nor the task, and the
 * last-resort fallback, reached only by a real settlement error, settles
 * each outcome with what the failed pass had consumed (its children, a
 * terminate). A codec that does not load parks only its own message.
 */

import { recordingState } from "./helpers/recording_state.ts";
import assert from "node:assert/strict";
import xzDecompress from "xz-decompress";
import type { RunOutcome } from "../src/worker/executor.ts";
import { Intake } from "../src/worker/intake.ts";
import type { Pool } from "../src/worker/pool.ts";
import { receiveOrPark, settleOrPark } from "../src/worker/last_resort.ts";
import { settleOutcomes } from "../src/worker/outcomes.ts";
import type { WorkerState } from "../src/worker/worker_state.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { decodeTaskHeaders } from "../src/protocol/task_request.ts";
import { headerDelivery, taskDelivery } from "./helpers/deliveries.ts";

const delivery = headerDelivery;

function state() {
  const recorded = recordingState();
  const ran: string[] = [];
  recorded.st.pool = {
    run: (runs: { id: string }[]) => ran.push(...runs.map((r) => r.id)),
  } as unknown as Pool;
  recorded.st.app.task("t.add", (a: number, b: number) => a + b);
  return { ...recorded, ran };
}

const req = (id: string) => ({ id, task: "t.add", rootId: id, replyTo: null }) as never;
const meta = (id: string) => encodeResultMeta({ taskId: id, status: "SUCCESS", result: 5 });

function run(st: WorkerState, seq: number, id: string): void {
  st.running.set(seq, {
    delivery: delivery(id),
    req: req(id),
    acked: false,
    ackEnded: false,
    started: 0,
    received: 0,
  });
}

/** A running task with a real message (what settling a not-run task reads its canvas from). */
function runReal(st: WorkerState, seq: number, id: string): void {
  const d = taskDelivery("t.add", id);
  st.running.set(seq, {
    delivery: d,
    req: decodeTaskHeaders(d),
    acked: false,
    ackEnded: false,
    started: 0,
    received: 0,
  });
}

/** Note a child `child-<parent>` sent by task `parent`. */
function sendChild(st: WorkerState, parent: string): void {
  st.children.record(encodeTaskMessage({
    task: "t.add",
    id: `child-${parent}`,
    args: [1],
    kwargs: {},
    now: new Date(),
    origin: "test@host",
    replyTo: "",
    parentId: parent,
  }));
}

/** A success whose follow-ups cannot be read: settling it throws, as a real settlement error. */
function unsettleable(seq: number, id: string): RunOutcome {
  const o: RunOutcome = { seq, ok: true, meta: meta(id), runtime: 1 };
  Object.defineProperty(o, "followUp", {
    get() {
      throw new TypeError("follow-ups broke");
    },
  });
  return o;
}

Deno.test("a listener throwing on a revoked-at-intake event does not park its batch-mates", async () => {
  const { st, parked, stored, ran } = state();
  st.revoked.add(["gone"], Date.now() + 60_000);
  st.lifecycle.subscribe((e) => {
    if (e.type === "revoked") throw new TypeError("listener broke");
  });
  await receiveOrPark(
    st,
    new Intake(st),
    ["a", "gone", "b"].map((id) => taskDelivery("t.add", id)),
  );
  await st.drainSettling();
  // Before: the throw reached receiveOrPark, which parked a and b with a FAILURE.
  assert.deepEqual(
    { ran, parked: parked.map((r) => r.taskId), stored: stored.map((e) => [e.taskId, e.status]) },
    { ran: ["a", "b"], parked: [], stored: [["gone", "REVOKED"]] },
  );
});

Deno.test("a listener throwing on one task's started event parks neither it nor its batch-mates", async () => {
  const { st, parked, ran } = state();
  const started: string[] = [];
  st.lifecycle.subscribe((e) => {
    if (e.type === "started" && e.req.id === "bad") throw new TypeError("listener broke");
  });
  st.lifecycle.subscribe((e) => e.type === "started" && started.push(e.req.id));
  await receiveOrPark(st, new Intake(st), ["a", "bad", "b"].map((id) => taskDelivery("t.add", id)));
  await st.drainSettling();
  // Before: the whole batch was parked, though all three were in the running set.
  assert.deepEqual({ ran, parked: parked.map((r) => r.taskId) }, {
    ran: ["a", "bad", "b"],
    parked: [],
  });
  assert.deepEqual(started, ["a", "bad", "b"], "a later listener heard every start");
  assert.equal(st.running.size, 3);
});

Deno.test("a listener that throws on every success: every task of the batch is acknowledged alike", async () => {
  const { st, parked, acked, stored, stats } = state();
  st.lifecycle.subscribe((e) => {
    if (e.type === "succeeded") throw new TypeError("listener broke");
  });
  for (const [i, id] of ["a", "b", "c"].entries()) run(st, i + 1, id);
  settleOrPark(
    st,
    ["a", "b", "c"].map((id, i) => ({ seq: i + 1, ok: true, meta: meta(id), runtime: 1 })),
    settleOutcomes,
  );
  await st.drainSettling();
  // Before: a acknowledged, b and c parked (their follow-ups never sent) for the same listener error.
  assert.deepEqual(
    { acked: acked.map((d) => d.headers.id), parked: parked.map((r) => r.taskId) },
    { acked: ["a", "b", "c"], parked: [] },
  );
  assert.deepEqual(stored.map((e) => e.taskId), ["a", "b", "c"]);
  assert.equal(stats.succeeded, 3);
});

Deno.test("the fallback stores the children of an outcome the failed pass had settled", async () => {
  const { st, parked, stored, stats } = state();
  sendChild(st, "a");
  sendChild(st, "b");
  run(st, 1, "a");
  run(st, 2, "b");
  settleOrPark(
    st,
    [{ seq: 1, ok: true, meta: meta("a"), runtime: 1 }, unsettleable(2, "b")],
    settleOutcomes,
  );
  await st.drainSettling();
  // Before: the first pass took a's children and threw at b; the fallback stored a without them.
  const byId = new Map(stored.map((e) => [e.taskId, e]));
  assert.match(byId.get("a")!.meta, /child-a/, "a's stored result lists its child");
  assert.match(byId.get("b")!.meta, /child-b/, "so does the parked b's");
  assert.deepEqual(parked.map((r) => r.taskId), ["b"]);
  assert.deepEqual([stats.succeeded, stats.parked], [1, 1]);
  assert.equal(st.children.size, 0);
});

Deno.test("the fallback stores a terminated task that the failed pass had settled as terminated", async () => {
  const { st, stored } = state();
  runReal(st, 1, "a");
  runReal(st, 2, "b");
  st.terminated.set(1, 15);
  settleOrPark(
    st,
    [{ seq: 1, ok: false, revoked: true, runtime: 1 }, unsettleable(2, "b")],
    settleOutcomes,
  );
  await st.drainSettling();
  // Before: the first pass deleted the terminate; the fallback stored REVOKED "revoked".
  const a = stored.find((e) => e.taskId === "a")!;
  assert.equal(a.status, "REVOKED");
  assert.match(a.meta, /terminated/);
  assert.equal(st.terminated.size, 0);
});

Deno.test("a message whose codec does not load is parked alone; its batch-mates go to the pool", async () => {
  const { st, parked, stored, ran } = state();
  const loader = xzDecompress.XzReadableStream as unknown as {
    _getModuleInstance(): Promise<void>;
  };
  const load = loader._getModuleInstance;
  loader._getModuleInstance = () => Promise.reject(new Error("wasm did not load"));
  try {
    const lzma = taskDelivery("t.add", "bad", {
      compression: "application/x-lzma",
      eta: new Date(Date.now() - 1000).toISOString(),
    });
    await receiveOrPark(st, new Intake(st), [
      taskDelivery("t.add", "a"),
      lzma,
      taskDelivery("t.add", "b"),
    ]);
    await st.drainSettling();
  } finally {
    loader._getModuleInstance = load;
  }
  // Before: the load threw out of the intake and the whole batch was parked.
  assert.deepEqual(ran, ["a", "b"]);
  assert.deepEqual(parked.map((r) => r.taskId), ["bad"]);
  assert.match(parked[0].reason, /wasm did not load/);
  assert.deepEqual(stored.map((e) => [e.taskId, e.status]), [["bad", "FAILURE"]]);
});
