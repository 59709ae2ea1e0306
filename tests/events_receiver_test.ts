/**
 * The TypeScript event receiver and state tracker: `app.events.receive()`
 * (and `receiveBatches()`, `listen()`) yields a Celeriac worker's events (with `-E`) and a client's `task-sent`
 * on Redis and KV; `EventState` follows workers and tasks, stays bounded,
 * keeps ready states against late events, and tells alive from offline;
 * malformed event messages are skipped.
 */

import assert from "node:assert/strict";
import { Celery, type CeleryEvent, EventState, type WorkerEvent } from "../mod.ts";
import { encodeEventMessage, EVENT_EXCHANGE, makeEvent } from "../protocol.ts";
import { celeryRequestedHeartbeat } from "./helpers/fixtures.ts";
import { redisAndKv, withWorker } from "./helpers/worker.ts";

const { transports, cleanup } = await redisAndKv("events-rx");

for (const t of transports) {
  Deno.test(`events on ${t.name}: receive() and EventState follow a worker and its tasks`, async () => {
    await withWorker(
      t,
      { taskEvents: true, heartbeatInterval: 0.5, hostname: `rx-${t.name}@%h` },
      async (client, worker) => {
        const sender = new Celery({
          broker: t.broker,
          backend: t.backend,
          defaultQueue: worker.queues[0],
          taskSendSentEvent: true,
        });
        const state = new EventState();
        const failures: string[] = [];
        const ac = new AbortController();
        const stream = client.events.receive({
          signal: ac.signal,
          handlers: { "task-failed": (e) => failures.push(e.exception) },
        });
        const first = stream.next(); // subscribes
        await new Promise((r) => setTimeout(r, 300));
        const ok = await sender.sendTask("t.add", [2, 3]);
        const bad = await sender.sendTask("t.fail", ["boom"]);
        const types: string[] = [];
        const timeout = setTimeout(() => ac.abort(), 20_000);
        const apply = (e: CeleryEvent) => {
          types.push(e.type);
          state.event(e);
          const done = state.tasks.get(ok.id)?.state === "SUCCESS" &&
            state.tasks.get(bad.id)?.state === "FAILURE" &&
            state.workers.get(worker.hostname)?.lastHeartbeat;
          if (done) ac.abort();
        };
        const head = await first;
        if (!head.done) apply(head.value);
        for await (const e of stream) apply(e);
        clearTimeout(timeout);
        await sender.close();
        const done = state.tasks.get(ok.id)!;
        assert.equal(done.state, "SUCCESS", JSON.stringify(types));
        assert.equal(done.name, "t.add");
        assert.equal(done.args, "(2, 3)");
        assert.equal(done.result, "5");
        assert.equal(done.hostname, worker.hostname);
        // Sent after its publish returned, as Celery's: a worker that receives the message at once
        // (handed out as its wait claimed it) may stamp task-received first.
        assert.ok(Math.abs(done.timestamps.sent! - done.timestamps.received!) < 5);
        assert.ok(done.timestamps.received! <= done.timestamps.succeeded!);
        assert.ok(done.runtime! >= 0);
        const failed = state.tasks.get(bad.id)!;
        assert.equal(failed.state, "FAILURE");
        assert.match(failed.traceback!, /boom/);
        assert.deepEqual(failures, [failed.exception]);
        const w = state.workers.get(worker.hostname)!;
        assert.equal(state.isAlive(w), true);
        assert.equal(w.software?.ident, "celeriac");
        assert.ok(types.includes("task-sent") && types.includes("worker-heartbeat"));
      },
    );
  });

  Deno.test(`events on ${t.name}: under --without-heartbeat a monitor's wakeup still gets a heartbeat`, async () => {
    await withWorker(
      t,
      { heartbeatInterval: 0, hostname: `rx-quiet-${t.name}@%h` },
      async (client, worker) => {
        const ac = new AbortController();
        const timeout = setTimeout(() => ac.abort(), 10_000);
        const seen: WorkerEvent[] = [];
        // receive() subscribes, then casts `heartbeat` (its wakeup), as Celery's Receiver.
        for await (const e of client.events.receive({ signal: ac.signal })) {
          if (e.hostname !== worker.hostname) continue;
          seen.push(e as WorkerEvent);
          if (e.type === "worker-heartbeat") ac.abort();
        }
        clearTimeout(timeout);
        assert.deepEqual(seen.map((e) => [e.type, e.freq]), [["worker-heartbeat", 5]]);
      },
    );
  });

  Deno.test(`events on ${t.name}: a malformed event message is skipped`, async () => {
    const app = new Celery({ broker: t.broker, backend: t.backend });
    try {
      const broker = await app.broker();
      const ac = new AbortController();
      const stream = app.events.receive({ signal: ac.signal, wakeup: false });
      const first = stream.next();
      await new Promise((r) => setTimeout(r, 300));
      const good = makeEvent("task-started", { uuid: "u1" }, { hostname: "h", pid: 1, clock: 1 });
      const body = (text: string) => ({
        body: new TextEncoder().encode(text),
        contentType: "application/json",
        contentEncoding: "utf-8",
        headers: { hostname: "h" },
        properties: {},
      });
      await broker.broadcast(EVENT_EXCHANGE, body("{oops"), "task.multi");
      await broker.broadcast(EVENT_EXCHANGE, body('[{"no": "type"}]'), "task.multi");
      await broker.broadcast(EVENT_EXCHANGE, body(JSON.stringify([good])), "task.multi");
      const timer = setTimeout(() => ac.abort(), 10_000);
      const got = await first;
      clearTimeout(timer);
      assert.equal(got.done, false);
      assert.deepEqual(got.value, good);
      ac.abort();
      assert.equal((await stream.next()).done, true);
    } finally {
      await app.close();
    }
  });
}

for (const t of transports) {
  Deno.test(`events on ${t.name}: receiveBatches() yields what arrived together, in order`, async () => {
    const app = new Celery({ broker: t.broker, backend: t.backend });
    try {
      const broker = await app.broker();
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 10_000);
      const stream = app.events.receiveBatches({ signal: ac.signal, wakeup: false });
      const first = stream.next();
      await new Promise((r) => setTimeout(r, 300));
      const sender = (clock: number) => ({ hostname: "h", pid: 1, clock });
      const batch = [
        makeEvent("task-received", { uuid: "b1", name: "n" }, sender(1)),
        makeEvent("task-started", { uuid: "b1" }, sender(2)),
        makeEvent("task-succeeded", { uuid: "b1", result: "1", runtime: 0.1 }, sender(3)),
      ];
      await broker.broadcast(EVENT_EXCHANGE, encodeEventMessage(batch, "h"), "task.multi");
      const got: CeleryEvent[] = [];
      for (let step = await first; !step.done; step = await stream.next()) {
        assert.ok(step.value.length >= 1, "a step yields at least one event");
        got.push(...step.value);
        if (got.length >= 3) break;
      }
      clearTimeout(timer);
      assert.deepEqual(got.map((e) => e.type), ["task-received", "task-started", "task-succeeded"]);
      assert.deepEqual(got, batch);
      ac.abort();
    } finally {
      await app.close();
    }
  });
}

for (const t of transports) {
  Deno.test(`events on ${t.name}: listen() hands over each message's events as it arrives, until aborted`, async () => {
    const app = new Celery({ broker: t.broker, backend: t.backend });
    try {
      const broker = await app.broker();
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 10_000);
      const messages: CeleryEvent[][] = [];
      const got = Promise.withResolvers<void>();
      const heard: string[] = [];
      await app.events.listen((events) => {
        messages.push(events);
        if (messages.length === 2) got.resolve();
        throw new Error("a consumer's error is logged, not fatal");
      }, { signal: ac.signal, wakeup: false, handlers: { "*": (e) => heard.push(e.type) } });
      const sender = (clock: number) => ({ hostname: "h", pid: 1, clock });
      const batch = [
        makeEvent("task-received", { uuid: "l1", name: "n" }, sender(1)),
        makeEvent("task-started", { uuid: "l1" }, sender(2)),
      ];
      const single = makeEvent(
        "task-succeeded",
        { uuid: "l1", result: "1", runtime: 0.1 },
        sender(3),
      );
      await broker.broadcast(EVENT_EXCHANGE, encodeEventMessage(batch, "h"), "task.multi");
      await broker.broadcast(EVENT_EXCHANGE, encodeEventMessage(single, "h"), "task.succeeded");
      await got.promise;
      clearTimeout(timer);
      assert.deepEqual(messages, [batch, [single]]);
      assert.deepEqual(heard, ["task-received", "task-started", "task-succeeded"]);
      ac.abort();
    } finally {
      await app.close();
    }
  });
}

for (const t of transports) {
  Deno.test(`events on ${t.name}: a listen() whose wakeup cannot be sent rejects and leaves no subscription`, async () => {
    const app = new Celery({ broker: t.broker, backend: t.backend });
    const ac = new AbortController();
    try {
      const broker = await app.broker();
      const broadcast = broker.broadcast.bind(broker);
      broker.broadcast = (exchange, message, key) =>
        exchange === "celery.pidbox"
          ? Promise.reject(new Error("the pidbox is down"))
          : broadcast(exchange, message, key);
      const failed: CeleryEvent[] = [];
      await assert.rejects(
        app.events.listen((events) => failed.push(...events), { signal: ac.signal }),
        /the pidbox is down/,
      );
      broker.broadcast = broadcast;
      // The retry a dashboard makes, with the same signal.
      const heard: CeleryEvent[] = [];
      const got = Promise.withResolvers<void>();
      await app.events.listen((events) => {
        heard.push(...events);
        if (heard.length === 2) got.resolve();
      }, { signal: ac.signal, wakeup: false });
      const sender = (clock: number) => ({ hostname: "h", pid: 1, clock });
      for (const [i, uuid] of ["w1", "w2"].entries()) {
        const e = makeEvent("task-received", { uuid, name: "n" }, sender(i + 1));
        await broker.broadcast(EVENT_EXCHANGE, encodeEventMessage(e, "h"), "task.received");
      }
      const timer = setTimeout(() => got.reject(new Error("no events in 10 s")), 10_000);
      await got.promise;
      clearTimeout(timer);
      // Both subscriptions would see the same messages: give a leftover one time to show.
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(heard.map((e) => "uuid" in e ? e.uuid : e.type), ["w1", "w2"]);
      assert.deepEqual(failed, [], "the failed listen() still received events");
    } finally {
      ac.abort();
      await app.close();
    }
  });
}

function workerEvent(type: WorkerEvent["type"], hostname: string, at: number): WorkerEvent {
  return makeEvent(type, {
    freq: 2,
    active: 0,
    processed: 0,
    loadavg: [0, 0, 0],
    sw_ident: "py-celery",
    sw_ver: "5.2.6",
    sw_sys: "Linux",
  }, { hostname, pid: 7, clock: 1, timestamp: at * 1000 });
}

Deno.test("EventState: alive by heartbeat, offline, bounded, ready states win over late events", () => {
  let now = 1000;
  const state = new EventState({ maxTasks: 3, now: () => now });
  state.event(workerEvent("worker-online", "a@h", now));
  const a = state.workers.get("a@h")!;
  assert.equal(state.isAlive(a), true);
  now += 3.9;
  assert.equal(state.isAlive(a), true);
  now += 0.2;
  assert.equal(state.isAlive(a), false, "no heartbeat for more than 2 × freq");
  state.event(workerEvent("worker-heartbeat", "a@h", now));
  assert.deepEqual(state.aliveWorkers().map((w) => w.hostname), ["a@h"]);
  state.event(workerEvent("worker-offline", "a@h", now));
  assert.deepEqual(state.aliveWorkers(), []);

  const ev = (type: CeleryEvent["type"], uuid: string, at: number, extra = {}) =>
    makeEvent(type, { uuid, ...extra }, {
      hostname: "a@h",
      pid: 7,
      clock: 1,
      timestamp: at * 1000,
    });
  state.event(ev("task-succeeded", "t1", 10, { result: "1", runtime: 0.1 }));
  state.event(ev("task-started", "t1", 9));
  assert.equal(state.tasks.get("t1")!.state, "SUCCESS", "a late started does not undo success");
  state.event(ev("task-received", "t2", 11, { name: "x", args: "()", kwargs: "{}" }));
  state.event(ev("task-retried", "t2", 12, { exception: "KeyError('k')", traceback: "" }));
  state.event(ev("task-received", "t2", 13));
  assert.equal(state.tasks.get("t2")!.state, "RECEIVED", "a retried task is received again");
  state.event(ev("task-received", "t3", 14));
  state.event(ev("task-received", "t4", 15));
  assert.deepEqual([...state.tasks.keys()], ["t2", "t3", "t4"], "only the 3 most recent are kept");
  assert.deepEqual(state.countByState(), { RECEIVED: 3 });
  assert.deepEqual(state.latest(2).map((t) => t.uuid), ["t4", "t3"]);
  assert.deepEqual(state.tasksByState("RECEIVED", 1).map((t) => t.uuid), ["t4"]);
  assert.throws(() => new EventState({ maxTasks: 0 }), RangeError);
});

Deno.test("EventState: a sent task is PENDING, as in Celery's State, until a worker receives it", () => {
  const state = new EventState({ now: () => 20 });
  const at = (type: CeleryEvent["type"], ts: number) =>
    makeEvent(type, { uuid: "s1", name: "x" }, {
      hostname: "c@h",
      pid: 1,
      clock: 1,
      timestamp: ts * 1000,
    });
  state.event(at("task-sent", 10));
  assert.equal(state.tasks.get("s1")!.state, "PENDING");
  assert.equal(state.tasks.get("s1")!.timestamps.sent, 10);
  state.event(at("task-received", 11));
  assert.equal(state.tasks.get("s1")!.state, "RECEIVED");
});

Deno.test("events: clean up", async () => {
  await cleanup();
});

Deno.test("EventState: the heartbeat the heartbeat command asks for (no counts, freq 5) keeps the worker's counts and load", () => {
  let now = 1795490300;
  const state = new EventState({ now: () => now });
  const online = workerEvent("worker-online", "celery@fixture-host", now);
  state.event({ ...online, active: 2, processed: 9, loadavg: [0.5, 0.25, 0] });
  now = 1795490307.809074;
  const requested = JSON.parse(celeryRequestedHeartbeat()) as WorkerEvent;
  assert.equal(requested.active, undefined, "Celery's has no counts");
  state.event(requested);
  const w = state.workers.get("celery@fixture-host")!;
  assert.deepEqual(
    { active: w.active, processed: w.processed, loadavg: w.loadavg, freq: w.freq },
    { active: 2, processed: 9, loadavg: [0.5, 0.25, 0], freq: 5 },
  );
  assert.equal(w.lastHeartbeat, requested.timestamp);
  assert.equal(state.isAlive(w), true);
});
