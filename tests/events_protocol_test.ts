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
  encodeEventMessage,
  eventRoutingKey,
  LamportClock,
  makeEvent,
  ProtocolError,
  pyJsonDumps,
} from "../protocol.ts";
import { encodeEventListMessage, eventEncoder } from "../src/protocol/events.ts";

const sample = JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/celery-5.2/redis/events_sample.json", import.meta.url),
  ),
) as { messages: { channel: string; raw: string }[] };

const captured = sample.messages.map((m) => ({
  channel: m.channel,
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

Deno.test("events: eventEncoder writes the text of pyJsonDumps(makeEvent()) for every captured event", () => {
  const all = captured.flatMap(({ message }) => decodeEventMessage(message));
  for (const theirs of all) {
    const own: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(theirs)) {
      if (!["hostname", "utcoffset", "pid", "clock", "timestamp", "type"].includes(k)) own[k] = v;
    }
    const sender = { hostname: theirs.hostname, pid: theirs.pid };
    const at = theirs.timestamp * 1000;
    const text = eventEncoder(sender)(theirs.type, own, theirs.clock, at);
    assert.equal(
      text,
      pyJsonDumps(
        makeEvent(theirs.type as CeleryEvent["type"], own, {
          ...sender,
          clock: theirs.clock,
          timestamp: at,
        }),
      ),
    );
    assert.deepEqual(JSON.parse(text), theirs, theirs.type);
  }
  const odd = eventEncoder({ hostname: 'w\u00e9@h"q', pid: 1 });
  const fields = {
    uuid: "t",
    result: "'\u2603'",
    runtime: 1e-5,
    n: -0,
    none: null,
    skip: undefined,
  };
  assert.equal(
    odd("task-succeeded", fields, 9, 1_700_000_000_000),
    pyJsonDumps(makeEvent("task-succeeded", fields, {
      hostname: 'w\u00e9@h"q',
      pid: 1,
      clock: 9,
      timestamp: 1_700_000_000_000,
    })),
  );
  const batch = all.filter((e) => e.type.startsWith("task-")).map((e) =>
    eventEncoder({ hostname: e.hostname, pid: e.pid })(
      e.type,
      { uuid: (e as { uuid: string }).uuid },
      e.clock,
      e.timestamp * 1000,
    )
  );
  const message = encodeEventListMessage(batch, "w@h");
  assert.deepEqual(message.headers, { hostname: "w@h" });
  assert.equal(new TextDecoder().decode(message.body), "[" + batch.join(", ") + "]");
  assert.equal(decodeEventMessage(message).length, batch.length);
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

Deno.test("events: the Lamport clock moves past what it receives", () => {
  const c = new LamportClock();
  assert.equal(c.forward(), 1);
  assert.equal(c.adjust(10), 11);
  assert.equal(c.adjust(3), 12);
  assert.equal(c.adjust("junk"), 13);
  assert.equal(c.value, 13);
});
