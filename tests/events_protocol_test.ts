/**
 * Celery events on the wire, against messages captured from Celery 5.2.6:
 * decoding single events and `task.multi` batches, building events with
 * Celery's field order, routing keys, envelope headers and properties, and
 * what happens to malformed event messages.
 */

import assert from "node:assert/strict";
import type { CeleryEvent } from "../mod.ts";
import {
  decodeEnvelope,
  decodeEventMessage,
  encodeEnvelopeBytes,
  encodeEventMessage,
  eventRoutingKey,
  LamportClock,
  makeEvent,
  ProtocolError,
} from "../protocol.ts";
import { encodeEventListMessage } from "../src/protocol/events.ts";
import { EventListWriter, EventShape } from "../src/protocol/event_writer.ts";

const sample = JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/celery-5.2/redis/events_sample.json", import.meta.url),
  ),
) as { messages: { channel: string; raw: string }[] };

const captured = sample.messages.map((m) => ({
  channel: m.channel,
  raw: m.raw,
  message: decodeEnvelope(m.raw),
}));

Deno.test("events: every captured message decodes to events with their type and sender", () => {
  const types = new Set<string>();
  for (const { channel, message } of captured) {
    const events = decodeEventMessage(message);
    assert.ok(events.length >= 1);
    for (const e of events) {
      types.add(e.type);
      assert.equal(e.hostname, message.headers.hostname);
      assert.equal(typeof e.clock, "number");
      assert.equal(typeof e.timestamp, "number");
      assert.equal(e.utcoffset, 0);
    }
    const key = channel.split("/").at(-1)!;
    if (events.length > 1 || key === "task.multi") assert.equal(key, "task.multi");
    else assert.equal(key, eventRoutingKey(events[0].type));
  }
  for (
    const t of [
      "worker-online",
      "worker-heartbeat",
      "worker-offline",
      "task-sent",
      "task-received",
      "task-started",
      "task-succeeded",
      "task-failed",
      "task-retried",
      "task-revoked",
      "task-rejected",
    ]
  ) assert.ok(types.has(t), `${t} is in the sample`);
});

Deno.test("events: makeEvent puts the fields in Celery's order for every type", () => {
  for (const { message } of captured) {
    for (const theirs of decodeEventMessage(message)) {
      const own: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(theirs)) {
        if (!["hostname", "utcoffset", "pid", "clock", "timestamp", "type"].includes(k)) own[k] = v;
      }
      const ours = makeEvent(theirs.type as CeleryEvent["type"], own, {
        hostname: theirs.hostname,
        pid: theirs.pid,
        clock: theirs.clock,
        timestamp: theirs.timestamp * 1000,
      });
      assert.deepEqual(Object.keys(ours), Object.keys(theirs), theirs.type);
      assert.deepEqual(ours, theirs);
    }
  }
});

Deno.test("events: EventListWriter writes the bytes of encodeEventMessage(makeEvent() list) for every captured event", () => {
  const all = captured.flatMap(({ message }) => decodeEventMessage(message));
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const own = (e: CeleryEvent) => {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) {
      if (!["hostname", "utcoffset", "pid", "clock", "timestamp", "type"].includes(k)) {
        fields[k] = v;
      }
    }
    return fields;
  };
  const ours = (e: CeleryEvent) =>
    makeEvent(e.type as CeleryEvent["type"], own(e), {
      hostname: e.hostname,
      pid: e.pid,
      clock: e.clock,
      timestamp: e.timestamp * 1000,
    });
  const encoded = (events: CeleryEvent[]) => text(encodeEventMessage(events, "w@h").body);
  for (const theirs of all) {
    const writer = new EventListWriter({ hostname: theirs.hostname, pid: theirs.pid });
    writer.add(theirs.type, own(theirs), theirs.clock, theirs.timestamp * 1000);
    assert.equal(writer.length, 1);
    const list = text(writer.take());
    assert.equal(list, encoded([ours(theirs)]), theirs.type);
    assert.deepEqual(JSON.parse(list), [theirs], theirs.type);
    assert.equal(writer.length, 0);
  }
  // One writer, many events: the list of them all, twice (take() starts a new list).
  const tasks = all.filter((e) => e.hostname === all[0].hostname && e.pid === all[0].pid);
  const writer = new EventListWriter({ hostname: all[0].hostname, pid: all[0].pid });
  for (let round = 0; round < 2; round++) {
    for (const e of tasks) writer.add(e.type, own(e), e.clock, e.timestamp * 1000);
    const message = encodeEventListMessage(writer.take(), "w@h");
    assert.equal(text(message.body), encoded(tasks.map(ours)));
    assert.deepEqual(message.headers, { hostname: "w@h" });
    assert.equal(decodeEventMessage(message).length, tasks.length);
  }
  assert.equal(text(writer.take()), "[]");
  // Escapes, floats, -0, null, nested values, left-out undefined; a bad value appends nothing.
  const odd = new EventListWriter({ hostname: 'w\u00e9@h"q', pid: 1 });
  const fields = {
    uuid: "t",
    result: "'\u2603'\n",
    runtime: 1e-5,
    n: -0,
    big: 2 ** 60,
    none: null,
    ok: true,
    nested: { a: [1, "\u00e9"] },
    skip: undefined,
  };
  odd.add("task-succeeded", fields, 9, 1_700_000_000_000);
  assert.throws(() => odd.add("task-started", { uuid: () => 1 }, 10), /cannot|function/i);
  odd.add("task-started", { uuid: "u" }, 11, 1_700_000_000_500.25);
  assert.equal(
    text(odd.take()),
    encoded([
      makeEvent("task-succeeded", fields, {
        hostname: 'w\u00e9@h"q',
        pid: 1,
        clock: 9,
        timestamp: 1_700_000_000_000,
      }),
      makeEvent("task-started", { uuid: "u" }, {
        hostname: 'w\u00e9@h"q',
        pid: 1,
        clock: 11,
        timestamp: 1_700_000_000_500.25,
      }),
    ]),
  );
});

Deno.test("events: EventListWriter.addValues writes what add() writes for the same fields", () => {
  const all = captured.flatMap(({ message }) => decodeEventMessage(message));
  const sender = ["hostname", "utcoffset", "pid", "clock", "timestamp", "type"];
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const byFields = new EventListWriter({ hostname: "w@h", pid: 3 });
  const byValues = new EventListWriter({ hostname: "w@h", pid: 3 });
  for (const e of all) {
    const keys = Object.keys(e).filter((k) => !sender.includes(k));
    const values = keys.map((k) => (e as unknown as Record<string, unknown>)[k]);
    const fields = Object.fromEntries(keys.map((k, i) => [k, values[i]]));
    byFields.add(e.type, fields, e.clock, e.timestamp * 1000);
    byValues.addValues(new EventShape(e.type, keys), values, e.clock, e.timestamp * 1000);
  }
  // An undefined value is left out, as add() leaves out an undefined field.
  const shape = new EventShape("task-succeeded", ["uuid", "result", "runtime"]);
  byFields.add("task-succeeded", { uuid: "t", runtime: 1.5e-5 }, 9, 1_700_000_000_000);
  byValues.addValues(shape, ["t", undefined, 1.5e-5], 9, 1_700_000_000_000);
  assert.equal(byValues.length, all.length + 1);
  const list = text(byValues.take());
  assert.equal(list, text(byFields.take()));
  assert.ok(
    list.endsWith('"runtime": 1.5e-05, "timestamp": 1700000000.0, "type": "task-succeeded"}]'),
  );
  // Times far apart and with fractions of a ms in one list (stored as differences) come back exact.
  for (const at of [1_700_000_000_000, 0.1, 1_700_000_000_000.123, 1e15 + 0.5, 1_700_000_000_001]) {
    byFields.add("task-succeeded", { uuid: "t", runtime: 1 }, 9, at);
    byValues.addValues(shape, ["t", "None", 1], 9, at);
  }
  assert.equal(
    text(byValues.take()).replaceAll('"result": "None", ', ""),
    text(byFields.take()),
  );
  assert.throws(() => byValues.addValues(shape, ["t"], 10), RangeError);
  assert.throws(() => byValues.addValues(shape, ["t", () => 1, 1], 10), /cannot|function/i);
  assert.equal(byValues.length, 0, "a refused event appends nothing");
  // take(max) takes the first max events; the rest stay, in order, for the next take.
  const started = new EventShape("task-started", ["uuid"]);
  for (const [i, e] of all.slice(0, 5).entries()) {
    const uuid = `t${i}`;
    byFields.add("task-started", { uuid }, i, e.timestamp * 1000);
    byValues.addValues(started, [uuid], i, e.timestamp * 1000);
  }
  const whole = text(byFields.take());
  const first = text(byValues.take(2));
  assert.equal(byValues.length, 3);
  const rest = text(byValues.take(10));
  assert.equal(byValues.length, 0);
  assert.equal(first.slice(0, -1) + ", " + rest.slice(1), whole);
  assert.equal(JSON.parse(first).length, 2);
  // Takes in turn with events added between them (a fraction of max rounds down), values that
  // need escaping written late as add() writes them at once.
  const odd = ['caf\u00e9 "q" \\ \n', "\ud800", ""];
  for (const [i, uuid] of odd.entries()) {
    byFields.add("task-started", { uuid }, 20 + i, 1_700_000_000_500);
    byValues.addValues(started, [uuid], 20 + i, 1_700_000_000_500);
  }
  const parts = [text(byValues.take(1.5))];
  byFields.add("task-started", { uuid: "late" }, 30, 1_700_000_001_000);
  byValues.addValues(started, ["late"], 30, 1_700_000_001_000);
  assert.equal(byValues.length, 3);
  parts.push(text(byValues.take(2)), text(byValues.take()));
  assert.equal(byValues.length, 0);
  assert.deepEqual(parts.map((p) => JSON.parse(p).length), [1, 2, 1]);
  assert.equal("[" + parts.map((p) => p.slice(1, -1)).join(", ") + "]", text(byFields.take()));
  // A value that needs escaping after others were written, and numbers past 2^32, negative or
  // whole floats, between flat ones: the event is written as add() writes it, nothing else kept.
  const received = new EventShape("task-received", ["uuid", "name", "args", "retries", "eta"]);
  const rows: unknown[][] = [
    ["r1", "t.a", "('caf\u00e9', \"q\")", 2 ** 40, null],
    ["r2", "t.b", "()", -3, true],
    ["r3", "t.\n", "(1,)", 0, false],
    ["r4", "t.c", "()", 7, "2026-01-01T00:00:00+00:00"],
  ];
  for (const [i, row] of rows.entries()) {
    const fields = Object.fromEntries(received.keys.map((k, j) => [k, row[j]]));
    byFields.add("task-received", fields, 40 + i, 1_700_000_002_000);
    byValues.addValues(received, row, 40 + i, 1_700_000_002_000);
  }
  const escaped = text(byValues.take());
  assert.equal(escaped, text(byFields.take()));
  assert.deepEqual(JSON.parse(escaped).map((e: { uuid: string }) => e.uuid), [
    "r1",
    "r2",
    "r3",
    "r4",
  ]);
});

Deno.test("events: both encoders write every captured event body byte for byte as Celery did", () => {
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const sender = ["hostname", "utcoffset", "pid", "clock", "timestamp", "type"];
  for (const { message } of captured) {
    const body = text(message.body);
    const events = decodeEventMessage(message);
    const single = !body.startsWith("[");
    const ours = encodeEventMessage(single ? events[0] : events, String(message.headers.hostname));
    assert.equal(text(ours.body), body);
    if (single) continue;
    const byFields = new EventListWriter({ hostname: events[0].hostname, pid: events[0].pid });
    const byValues = new EventListWriter({ hostname: events[0].hostname, pid: events[0].pid });
    for (const e of events) {
      const keys = Object.keys(e).filter((k) => !sender.includes(k));
      const values = keys.map((k) => (e as unknown as Record<string, unknown>)[k]);
      byFields.add(
        e.type,
        Object.fromEntries(keys.map((k, i) => [k, values[i]])),
        e.clock,
        e.timestamp * 1000,
      );
      byValues.addValues(new EventShape(e.type, keys), values, e.clock, e.timestamp * 1000);
    }
    assert.equal(text(byFields.take()), body);
    assert.equal(text(byValues.take()), body);
  }
});

Deno.test("events: whole timestamps, runtimes, freq and loadavg are written as Python floats by both encoders", () => {
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const at = 1_700_000_000_000;
  const sender = { hostname: "w@h", pid: 7, clock: 3, timestamp: at };
  const heartbeat = makeEvent("worker-heartbeat", {
    freq: 2,
    active: 0,
    processed: 5,
    loadavg: [0, 0.5, 1],
    sw_ident: "celeriac",
  }, sender);
  assert.equal(
    text(encodeEventMessage(heartbeat, "w@h").body),
    '{"hostname": "w@h", "utcoffset": 0, "pid": 7, "clock": 3, "freq": 2.0, "active": 0, ' +
      '"processed": 5, "loadavg": [0.0, 0.5, 1.0], "sw_ident": "celeriac", ' +
      '"timestamp": 1700000000.0, "type": "worker-heartbeat"}',
  );
  const succeeded = new EventShape("task-succeeded", ["uuid", "result", "runtime"]);
  const cases: [number, number, string, string][] = [
    [at, 0, "1700000000.0", "0.0"],
    [at, 2, "1700000000.0", "2.0"],
    [at + 500, 0.25, "1700000000.5", "0.25"],
    [0, -0, "0.0", "-0.0"],
    [at, 1e-5, "1700000000.0", "1e-05"],
    [at, 1e17, "1700000000.0", "1e+17"],
  ];
  for (const [ms, runtime, stamp, runtimeText] of cases) {
    const fields = { uuid: "t1", result: "None", runtime };
    const expected = `[{"hostname": "w@h", "utcoffset": 0, "pid": 7, "clock": 9, "uuid": "t1", ` +
      `"result": "None", "runtime": ${runtimeText}, "timestamp": ${stamp}, "type": "task-succeeded"}]`;
    const general = encodeEventMessage([
      makeEvent("task-succeeded", fields, { ...sender, clock: 9, timestamp: ms }),
    ], "w@h");
    const byFields = new EventListWriter({ hostname: "w@h", pid: 7 });
    byFields.add("task-succeeded", fields, 9, ms);
    const byValues = new EventListWriter({ hostname: "w@h", pid: 7 });
    byValues.addValues(succeeded, ["t1", "None", runtime], 9, ms);
    assert.equal(text(general.body), expected);
    assert.equal(text(byFields.take()), expected);
    assert.equal(text(byValues.take()), expected);
  }
  // Integer fields stay integers; a runtime that is not a number is written as JSON writes it.
  const started = text(
    encodeEventMessage(makeEvent("task-started", { uuid: "t", retries: 2 }, sender), "w@h").body,
  );
  assert.match(started, /"clock": 3, "uuid": "t", "retries": 2, "timestamp": 1700000000\.0/);
  const odd = new EventListWriter({ hostname: "w@h", pid: 7 });
  odd.addValues(succeeded, ["t", "None", null], 9, at);
  assert.match(text(odd.take()), /"runtime": null, /);
});

Deno.test("events: every captured event message re-encodes to the captured envelope bytes", () => {
  for (const { message, raw } of captured) {
    const env = message as ReturnType<typeof decodeEnvelope>;
    const bytes = encodeEnvelopeBytes(env, env.deliveryInfo, env.deliveryTag);
    assert.equal(new TextDecoder().decode(bytes), raw);
  }
});

Deno.test("events: encodeEventMessage has Celery's content type, headers and properties", () => {
  const theirs = captured.find((c) => c.channel.endsWith("task.multi"))!.message;
  const events = decodeEventMessage(theirs);
  const ours = encodeEventMessage(events, String(theirs.headers.hostname));
  assert.equal(ours.contentType, theirs.contentType);
  assert.equal(ours.contentEncoding, theirs.contentEncoding);
  assert.deepEqual(ours.headers, theirs.headers);
  assert.equal(ours.properties.delivery_mode, 1);
  assert.equal(ours.properties.priority, 0);
  assert.deepEqual(decodeEventMessage(ours), events);
  assert.equal(eventRoutingKey("task-succeeded"), "task.succeeded");
});

Deno.test("events: malformed event messages are refused with a ProtocolError", () => {
  const base = encodeEventMessage(
    makeEvent("task-started", { uuid: "t" }, { hostname: "h", pid: 1, clock: 1 }),
    "h",
  );
  const bad = (body: string, contentType = "application/json") => ({
    ...base,
    contentType,
    body: new TextEncoder().encode(body),
  });
  assert.throws(() => decodeEventMessage(bad("{not json")), ProtocolError);
  assert.throws(() => decodeEventMessage(bad('{"hostname": "h"}')), /string `type`/);
  assert.throws(
    () => decodeEventMessage(bad('[{"type": "x", "hostname": "h"}, 3]')),
    ProtocolError,
  );
  assert.throws(() => decodeEventMessage(bad("{}", "application/x-python-serialize")), /JSON/);
});

Deno.test("events: a batch from several senders and of unknown types decodes each event as sent", () => {
  const sender = (hostname: string, clock: number) => ({ hostname, pid: 1, clock });
  const sent = [
    makeEvent("task-received", { uuid: "a" }, sender("w1@h", 1)),
    makeEvent("task-started", { uuid: "a" }, sender("w1@h", 2)),
    makeEvent("task-started", { uuid: "b" }, sender("w2@h", 1)),
    { ...makeEvent("task-started", { uuid: "c" }, sender("w1@h", 3)), type: "task-custom" },
    makeEvent("worker-heartbeat", { freq: 2 }, sender("w2@h", 2)),
  ] as CeleryEvent[];
  const got = decodeEventMessage(encodeEventMessage(sent, "w1@h"));
  assert.deepEqual(got.map((e) => [e.type, e.hostname]), [
    ["task-received", "w1@h"],
    ["task-started", "w1@h"],
    ["task-started", "w2@h"],
    ["task-custom", "w1@h"],
    ["worker-heartbeat", "w2@h"],
  ]);
  assert.deepEqual(got, JSON.parse(JSON.stringify(sent)));
});

Deno.test("events: the Lamport clock moves past what it receives", () => {
  const c = new LamportClock();
  assert.equal(c.forward(), 1);
  assert.equal(c.adjust(10), 11);
  assert.equal(c.adjust(3), 12);
  assert.equal(c.adjust("junk"), 13);
  assert.equal(c.value, 13);
});
