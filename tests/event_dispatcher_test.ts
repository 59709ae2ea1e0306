/**
 * The worker's event dispatcher: task events share `task.multi` messages
 * (at most `batchMax` a message; a full one at the end of its turn, the
 * rest one window of `flushMs` after the first pending), worker
 * events go out at once after the task events before them, events
 * carry the sender's time zone offset even across a daylight-saving change,
 * and the heartbeat the `heartbeat` command asks for is Celery's.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import type { Broker } from "../src/broker/port.ts";
import { decodeEventMessage, LamportClock, type Message } from "../protocol.ts";
import { EventShape } from "../src/protocol/event_writer.ts";
import { EventDispatcher } from "../src/worker/event_dispatcher.ts";
import { Heartbeat } from "../src/worker/heartbeat.ts";
import { celeryRequestedHeartbeat } from "./helpers/fixtures.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";

/** What the dispatcher published, as (routing key, event types) in order. */
function recorder(): { broker: Broker; sent: { key: string; types: string[] }[] } {
  const sent: { key: string; types: string[] }[] = [];
  const broker = {
    broadcast(exchange: string, message: Message, routingKey = ""): Promise<void> {
      assert.equal(exchange, "celeryev");
      sent.push({ key: routingKey, types: decodeEventMessage(message).map((e) => e.type) });
      return Promise.resolve();
    },
  } as unknown as Broker;
  return { broker, sent };
}

Deno.test("event dispatcher: task events within the window share one task.multi message", async () => {
  const { broker, sent } = recorder();
  const events = new EventDispatcher(broker, "w@h", new LamportClock(), {
    taskEvents: true,
    flushMs: 100,
  });
  events.sendTask("task-received", { uuid: "t1" });
  await new Promise((r) => setTimeout(r, 0));
  events.sendTask("task-started", { uuid: "t1" });
  events.sendTask("task-succeeded", { uuid: "t1", result: "1", runtime: 0.001 });
  assert.equal(sent.length, 0, "nothing goes out before the window closes");
  await new Promise((r) => setTimeout(r, 250));
  assert.deepEqual(sent, [{
    key: "task.multi",
    types: ["task-received", "task-started", "task-succeeded"],
  }]);
  await events.close();
});

Deno.test("event dispatcher: full messages go at the end of the turn that filled them, the rest waits for its window; close() sends all", async () => {
  const { broker, sent } = recorder();
  const events = new EventDispatcher(broker, "w@h", new LamportClock(), {
    taskEvents: true,
    batchMax: 3,
    flushMs: 60_000,
  });
  for (let i = 0; i < 7; i++) events.sendTask("task-started", { uuid: `t${i}` });
  assert.equal(sent.length, 0, "nothing goes out within the turn");
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(sent.map((s) => s.types.length), [3, 3], "the full messages, at its end");
  events.sendTask("task-started", { uuid: "t7" });
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(sent.length, 2, "two events wait for their window");
  await events.close();
  assert.deepEqual(sent.map((s) => s.types.length), [3, 3, 2]);
});

Deno.test("event dispatcher: a worker event goes out after the pending task events, batchMax a message, in clock order", async () => {
  const sent: { key: string; events: { uuid?: unknown; clock: number }[] }[] = [];
  const broker = {
    broadcast(_exchange: string, message: Message, routingKey = ""): Promise<void> {
      sent.push({ key: routingKey, events: decodeEventMessage(message) });
      return Promise.resolve();
    },
  } as unknown as Broker;
  const events = new EventDispatcher(broker, "w@h", new LamportClock(), {
    taskEvents: true,
    batchMax: 3,
    flushMs: 60_000,
  });
  const started = new EventShape("task-started", ["uuid"]);
  for (let i = 0; i < 7; i++) events.sendTaskValues(started, [`t${i}`]);
  events.send("worker-heartbeat", { freq: 2, active: 0, processed: 7 });
  assert.deepEqual(sent.map((s) => [s.key, s.events.length]), [
    ["task.multi", 3],
    ["task.multi", 3],
    ["task.multi", 1],
    ["worker.heartbeat", 1],
  ]);
  const all = sent.flatMap((s) => s.events);
  assert.deepEqual(all.slice(0, 7).map((e) => e.uuid), ["t0", "t1", "t2", "t3", "t4", "t5", "t6"]);
  assert.deepEqual(all.map((e) => e.clock), [1, 2, 3, 4, 5, 6, 7, 8]);
  await events.close();
  assert.equal(sent.length, 4, "nothing is left for the turn after");
});

Deno.test("event dispatcher: a worker event follows the task events pending before it", async () => {
  const { broker, sent } = recorder();
  const events = new EventDispatcher(broker, "w@h", new LamportClock(), {
    taskEvents: true,
    flushMs: 60_000,
  });
  events.sendTask("task-succeeded", { uuid: "t1", result: "1", runtime: 0.001 });
  events.send("worker-offline", { freq: 2, active: 0, processed: 1 });
  assert.deepEqual(sent, [
    { key: "task.multi", types: ["task-succeeded"] },
    { key: "worker.offline", types: ["worker-offline"] },
  ]);
  events.taskEvents = false;
  events.sendTask("task-started", { uuid: "t2" });
  await events.close();
  assert.equal(sent.length, 2, "task events are dropped while off");
});

Deno.test("event dispatcher: a window's events go out flushMs after its first (a full message at once); the next window starts with the next event", async () => {
  const { broker, sent } = recorder();
  const events = new EventDispatcher(broker, "w@h", new LamportClock(), {
    taskEvents: true,
    batchMax: 2,
    flushMs: 150,
  });
  const started = new EventShape("task-started", ["uuid"]);
  // from the window's first event, not from when the wait began (a busy host runs the
  // wait's first timer late, which made a 150 ms window look 133 ms long)
  let from = 0;
  const until = async (n: number) => {
    while (sent.length < n && performance.now() - from < 5_000) {
      await new Promise((r) => setTimeout(r, 5));
    }
    return performance.now() - from;
  };
  events.sendTaskValues(started, ["t1"]);
  events.sendTaskValues(started, ["t2"]);
  from = performance.now();
  events.sendTaskValues(started, ["t3"]);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(sent.map((s) => s.types.length), [2], "the full message, at once");
  const first = await until(2);
  assert.deepEqual(sent.map((s) => s.types.length), [2, 1]);
  assert.ok(first >= 140, `the first window went out after ${first.toFixed(0)} ms`);
  await new Promise((r) => setTimeout(r, 100));
  from = performance.now();
  events.sendTaskValues(started, ["t4"]);
  const second = await until(3);
  assert.deepEqual(sent.map((s) => s.types.length), [2, 1, 1]);
  assert.ok(second >= 140, `the second window went out after ${second.toFixed(0)} ms`);
  await events.close();
});

Deno.test("event dispatcher: on a broker with maxMessageBytes, batches split to fit, an event fitting none is dropped with a warning", async () => {
  const sizes: number[] = [];
  const uuids: string[] = [];
  const broker = {
    maxMessageBytes: 10_000,
    broadcast(_exchange: string, message: Message): Promise<void> {
      sizes.push(message.body.byteLength);
      for (const e of decodeEventMessage(message)) {
        uuids.push(String((e as { uuid?: unknown }).uuid));
      }
      return Promise.resolve();
    },
  } as unknown as Broker;
  const records = await captureLogs("warning");
  try {
    const events = new EventDispatcher(broker, "w@h", new LamportClock(), {
      taskEvents: true,
      batchMax: 500,
      flushMs: 60_000,
    });
    for (let i = 0; i < 300; i++) events.sendTask("task-started", { uuid: `t${i}` });
    events.sendTask("task-failed", { uuid: "huge", traceback: "x".repeat(20_000) });
    events.sendTask("task-started", { uuid: "after" });
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(sizes.length, 0, "300 events are not a full message of 500");
    await events.close();
    assert.ok(sizes.length > 1, `${sizes.length} messages`);
    assert.ok(sizes.every((n) => n <= 10_000 - 4096), JSON.stringify(sizes));
    assert.deepEqual(uuids, [...Array.from({ length: 300 }, (_, i) => `t${i}`), "after"]);
    const warnings = records.map(logLine);
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(
      warnings[0],
      /^warning Dropping the task-failed event of task huge: it is 20\d{3} bytes/,
    );
  } finally {
    await reset();
  }
});

Deno.test("event dispatcher: batchMax below 1 and negative flushMs are RangeErrors", () => {
  const { broker } = recorder();
  const clock = new LamportClock();
  assert.throws(() => new EventDispatcher(broker, "w@h", clock, { batchMax: 0 }), RangeError);
  assert.throws(() => new EventDispatcher(broker, "w@h", clock, { flushMs: -1 }), RangeError);
});

Deno.test("events: utcoffset follows the local zone across a daylight-saving change", async () => {
  // Europe/Berlin: UTC+1 in winter (Python's utcoffset -1), UTC+2 in summer (-2).
  const code = `
    import { makeEvent } from "./protocol.ts";
    const at = [Date.UTC(2026, 0, 15), Date.UTC(2026, 6, 15), Date.UTC(2026, 0, 15) + 1000,
      Date.UTC(2026, 2, 29, 0, 59, 59), Date.UTC(2026, 2, 29, 1, 0, 0)];
    const sender = { hostname: "w@h", pid: 1, clock: 1 };
    console.log(JSON.stringify(at.map((timestamp) =>
      makeEvent("task-started", { uuid: "t" }, { ...sender, timestamp }).utcoffset)));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    cwd: new URL("..", import.meta.url),
    env: { TZ: "Europe/Berlin" },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(out.success);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [-1, -2, -1, -1, -2]);
});

/** A flat JSON object's members as [key, JSON kind]: whole floats (`5.0`) are not ints (`5`). */
function kinds(text: string): [string, string][] {
  return [...text.matchAll(/"(\w+)": ("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^,}]+)/g)].map(([, k, v]) => [
    k,
    v.startsWith('"')
      ? "string"
      : v.startsWith("[")
      ? `list of ${v === "[]" ? "nothing" : kinds(`{"x": ${v.slice(1, -1).split(", ")[0]}}`)[0][1]}`
      : /^-?\d+$/.test(v)
      ? "int"
      : /^-?\d+(\.\d+)?(e[+-]\d+)?$/.test(v)
      ? "float"
      : v,
  ]);
}

Deno.test("heartbeat: the one the heartbeat command asks for has Celery's fields and types (freq 5, an int); the periodic ones keep freq 2.0 and the counts", async () => {
  const sent: { key: string; text: string }[] = [];
  const broker = {
    broadcast(_exchange: string, message: Message, routingKey = ""): Promise<void> {
      sent.push({ key: routingKey, text: new TextDecoder().decode(message.body) });
      return Promise.resolve();
    },
  } as unknown as Broker;
  const events = new EventDispatcher(broker, "celeriac@h", new LamportClock());
  const heart = new Heartbeat(events, () => ({ active: 1, processed: 3 }), 2);
  const realNow = Date.now;
  Date.now = () => 1795490307000; // a whole second: its timestamp is still a float
  try {
    heart.start();
    heart.requested();
    heart.stop();
  } finally {
    Date.now = realNow;
  }
  await events.close();
  assert.deepEqual(sent.map((s) => s.key), [
    "worker.online",
    "worker.heartbeat",
    "worker.offline",
  ]);
  const requested = sent[1].text;
  const theirs = celeryRequestedHeartbeat();
  assert.deepEqual(kinds(requested), kinds(theirs), `${requested}\nvs Celery's\n${theirs}`);
  assert.deepEqual(kinds(theirs).map(([k]) => k), [
    "hostname",
    "utcoffset",
    "pid",
    "clock",
    "freq",
    "sw_ident",
    "sw_ver",
    "sw_sys",
    "timestamp",
    "type",
  ]);
  assert.match(requested, /"freq": 5, /);
  assert.match(requested, /"timestamp": 1795490307\.0, /);
  for (const periodic of [sent[0].text, sent[2].text]) {
    assert.deepEqual(kinds(periodic).slice(4, 8), [
      ["freq", "float"],
      ["active", "int"],
      ["processed", "int"],
      ["loadavg", "list of float"],
    ]);
    assert.match(periodic, /"freq": 2\.0, "active": 1, "processed": 3, /);
  }
});

Deno.test("heartbeat: with freq 0 (--without-heartbeat) no online, periodic or offline event; the heartbeat command still gets one", async () => {
  const sent: string[] = [];
  const broker = {
    broadcast(_exchange: string, _message: Message, routingKey = ""): Promise<void> {
      sent.push(routingKey);
      return Promise.resolve();
    },
  } as unknown as Broker;
  const events = new EventDispatcher(broker, "celeriac@h", new LamportClock());
  const heart = new Heartbeat(events, () => ({ active: 0, processed: 0 }), 0);
  heart.start();
  await new Promise((r) => setTimeout(r, 50));
  heart.requested();
  heart.stop();
  await events.close();
  assert.deepEqual(sent, ["worker.heartbeat"]);
});
