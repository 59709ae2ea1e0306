/**
 * A revoke with terminate that reaches a task whose handler already
 * returned (its outcome on its way from its Web Worker: the pool stops
 * nothing then) leaves it alone, as Celery leaves a task that finished:
 * its outcome settles as any other, its result is stored, its follow-ups
 * sent. It used to be settled as REVOKED "terminated" over its SUCCESS.
 * The inline pool, whose outcomes cannot tell a run its terminate stopped
 * from one that finished, reports a task it terminates at once.
 */

import assert from "node:assert/strict";
import type { ResultBackend, StoreEntry } from "../src/backend/port.ts";
import type { Broker, Delivery } from "../src/broker/port.ts";
import { Celery } from "../mod.ts";
import type { Intake } from "../src/worker/intake.ts";
import { InlinePool } from "../src/worker/inline_pool.ts";
import type { Pool } from "../src/worker/pool.ts";
import { messageRunRequest } from "./helpers/run_info.ts";
import { settleOutcomes } from "../src/worker/outcomes.ts";
import { revokeTasks } from "../src/worker/revoke.ts";
import { WorkerState } from "../src/worker/worker_state.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { decodeTaskHeaders } from "../src/protocol/task_request.ts";

Deno.test("revoke with terminate of a task that finished: its outcome settles normally", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const st = new WorkerState(app, { app }, "test@host");
  const acked: Delivery[] = [];
  const stored: StoreEntry[] = [];
  const terminated: number[] = [];
  st.broker = {
    ack: (d: Delivery[]) => (acked.push(...d), Promise.resolve()),
    addRevoked: () => Promise.resolve(),
  } as unknown as Broker;
  st.backend = {
    store: (e: StoreEntry[]) => (stored.push(...e), Promise.resolve()),
  } as unknown as ResultBackend;
  // As the threads pool does for a task whose handler returned: nothing to stop.
  st.pool = {
    revoke: () => {},
    terminate: (seqs: number[]) => terminated.push(...seqs),
  } as unknown as Pool;
  const events: string[] = [];
  st.lifecycle.subscribe((e) => {
    if (e.type === "succeeded" || e.type === "revoked") events.push(e.type);
  });
  const message = encodeTaskMessage({
    task: "t.add",
    id: "done",
    args: [1, 2],
    kwargs: {},
    now: new Date(),
    origin: "x",
    replyTo: "",
  });
  const delivery: Delivery = {
    ...message,
    queue: "q",
    deliveryTag: "tag",
    redelivered: false,
    exchange: "",
    routingKey: "q",
  };
  const req = decodeTaskHeaders(delivery);
  st.running.set(1, { delivery, req, acked: false, ackEnded: false, started: 0, received: 0 });
  const intake = { revoke: () => {} } as unknown as Intake;
  assert.deepEqual(revokeTasks(st, intake, ["done"], { terminate: true }), ["done"]);
  assert.deepEqual(terminated, [1]);
  const meta = encodeResultMeta({ taskId: "done", status: "SUCCESS", result: 3 });
  settleOutcomes(st, [{ seq: 1, ok: true, meta, runtime: 0.01 }]);
  await st.drainSettling();
  // Before: REVOKED "terminated" stored, announced as revoked.
  assert.deepEqual(stored.map((e) => [e.taskId, e.status]), [["done", "SUCCESS"]]);
  assert.deepEqual(events, ["succeeded"]);
  assert.deepEqual(acked, [delivery]);
  assert.equal(st.terminated.size, 0, "the mark is dropped");
});

Deno.test("inline pool: a terminate reports the task at once; the outcome it gives after is its own", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const { promise: aborted, resolve } = Promise.withResolvers<void>();
  app.task(
    "t.wait",
    { bind: true },
    (ctx) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => (reject(ctx.signal.reason), resolve()))
      ),
  );
  const reported: string[] = [];
  const pool = new InlinePool(app, 2, {
    onOutcomes: (os) => reported.push(...os.map((o) => `outcome ${o.seq}`)),
    onPublish: () => Promise.resolve(),
    onLost: () => {},
    onTimeLimit: (seq, seconds) => reported.push(`terminated ${seq} ${seconds}`),
  });
  await pool.start();
  try {
    const req = messageRunRequest({
      task: "t.wait",
      id: "w",
      args: [],
      kwargs: {},
      now: new Date(),
      origin: "x",
      replyTo: "",
    });
    pool.run([req]);
    await new Promise((r) => setTimeout(r, 20));
    pool.terminate([req.seq]);
    await aborted;
    await new Promise((r) => setTimeout(r, 20));
    // Before: nothing reported but the outcome of its abort, settled as the terminate's.
    assert.deepEqual(reported, [`terminated ${req.seq} 0`, `outcome ${req.seq}`]);
    pool.terminate([req.seq]);
    assert.equal(reported.length, 2, "a task no longer running is not reported again");
  } finally {
    await pool.close();
    await app.close();
  }
});
