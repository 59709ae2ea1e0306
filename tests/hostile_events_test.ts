/**
 * Hostile event messages on `celeryev`: an event the decoder hands on can be
 * dumped (`events --dump`), drawn (`events`) and shown by the dashboard
 * (applied, its heartbeats checked, its changes serialized for the
 * browser) without throwing; a throw there is uncaught (a timer or the
 * dump loop) and ends the process. One the decoder refuses is logged and
 * skipped by the receiver.
 */

import assert from "node:assert/strict";
import { decodeEventMessage, type Message } from "../protocol.ts";
import { ViewModel } from "../dashboard.ts";
import { EventDumper } from "../src/cli/evdump.ts";
import { EventState } from "../src/client/event_state.ts";

function message(body: string): Message {
  return {
    body: new TextEncoder().encode(body),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { hostname: "evil@h" },
    properties: {},
  };
}

const base = '"hostname": "evil@h", "clock": 5, "pid": 1, "utcoffset": 0';
const now = 1_800_000_000;

/** Bodies of hostile events; each either decodes into events every consumer survives, or is refused. */
const hostile = [
  `{"type": "worker-heartbeat", ${base}, "timestamp": 123456789012345678901234567890, "freq": 2}`,
  `{"type": "worker-heartbeat", ${base}, "timestamp": 1e300, "freq": 2, "active": 1}`,
  `{"type": "worker-online", ${base}, "timestamp": -1e300}`,
  `{"type": "worker-heartbeat", ${base}, "timestamp": NaN, "freq": 2}`,
  `{"type": "worker-heartbeat", ${base}, "timestamp": Infinity}`,
  `{"type": "worker-heartbeat", ${base}, "timestamp": "now", "freq": 2}`,
  `{"type": "worker-heartbeat", "hostname": "evil@h", "timestamp": ${now}, "utcoffset": "x"}`,
  `{"type": "worker-heartbeat", "hostname": "evil@h", "timestamp": ${now}, "utcoffset": 1e300}`,
  `{"type": "worker-heartbeat", "hostname": "evil@h", "timestamp": ${now}, "utcoffset": 99999999999999999999}`,
  `{"type": "worker-heartbeat", "hostname": "evil@h", "timestamp": ${now}, "clock": 99999999999999999999, "pid": 99999999999999999999}`,
  `{"type": "worker-heartbeat", "hostname": "evil@h", "freq": 2}`,
  `{"type": "task-received", ${base}, "uuid": "u1", "name": "t", "timestamp": 1e300}`,
  `{"type": "task-succeeded", ${base}, "uuid": "u1", "timestamp": "soon", "runtime": 1}`,
  `[{"type": "task-started", ${base}, "uuid": "u2", "timestamp": ${now}}, ` +
  `{"type": "task-failed", ${base}, "uuid": "u2", "timestamp": 99999999999999999999999}]`,
  // Values that throw when turned into a string (before: `events` and `events --dump` ended).
  `{"type": "worker-online", ${base}, "timestamp": ${now}, "sw_ident": "py-celery", ` +
  `"sw_ver": {"toString": 1}, "sw_sys": {"toString": 1}}`,
  `{"type": "task-received", ${base}, "timestamp": ${now}, "uuid": {"toString": 1}, "name": "t"}`,
  `{"type": "task-started", ${base}, "timestamp": ${now}, "uuid": {"toString": 1}}`,
];

Deno.test("hostile events: what the decoder hands on is dumped, drawn and shown by the dashboard without a throw", () => {
  for (const body of hostile) {
    let events;
    try {
      events = decodeEventMessage(message(body));
    } catch {
      continue;
    }
    const dumper = new EventDumper();
    const state = new EventState({ now: () => now });
    const model = new ViewModel();
    for (const e of events) {
      assert.doesNotThrow(() => dumper.line(e, now), body);
      state.event(e);
      for (const t of state.latest(10)) {
        assert.doesNotThrow(() => new Date(t.updated * 1000).toISOString(), body);
      }
      model.apply(e);
    }
    assert.doesNotThrow(() => {
      model.tick(now + 3600);
      JSON.stringify({ ...model.takeChanges(), workers: model.workers.list(now + 3600) });
    }, body);
  }
});

Deno.test("hostile events: a timestamp, utcoffset, clock or pid that is not a number is refused by the decoder", () => {
  for (
    const field of [
      '"timestamp": 123456789012345678901234567890',
      '"timestamp": 1e300',
      '"timestamp": NaN',
      '"timestamp": "now"',
      '"utcoffset": "x"',
      '"utcoffset": 1e300',
      '"clock": "x"',
      '"pid": [1]',
    ]
  ) {
    const body = `{"type": "worker-heartbeat", "hostname": "evil@h", "timestamp": 1, ${field}}`;
    assert.throws(() => decodeEventMessage(message(body)), /event's/, field);
  }
  // The refused value is shown as JSON, shortened: it said "got [object Object]".
  for (
    const [pid, shown] of [
      ['{"a": 1}', 'got {"a":1}'],
      ["[1, 99999999999999999999]", "got [1,99999999999999999999]"],
      [`"${"x".repeat(100)}"`, `got "${"x".repeat(59)}…`],
      ["NaN", "got NaN"],
    ]
  ) {
    const body =
      `{"type": "worker-heartbeat", "hostname": "evil@h", "timestamp": 1, "pid": ${pid}}`;
    assert.throws(
      () => decodeEventMessage(message(body)),
      (err: Error) => err.message === `An event's pid must be a number, ${shown}`,
      pid,
    );
  }
  // Celery's own fields decode as they are.
  const [e] = decodeEventMessage(
    message(`{"type": "worker-heartbeat", ${base}, "timestamp": 1795490349.25, "freq": 2.0}`),
  );
  assert.equal(e.timestamp, 1795490349.25);
});

Deno.test("hostile events: a heartbeat without a timestamp counts as heard now, and goes offline when they stop", () => {
  const model = new ViewModel();
  const before = Date.now() / 1000;
  for (const e of decodeEventMessage(message('{"type": "worker-heartbeat", "hostname": "w@h"}'))) {
    model.apply(e);
  }
  const w = model.workers.get("w@h")!;
  assert.ok(w.lastHeartbeat !== null && w.lastHeartbeat >= before, `${w.lastHeartbeat}`);
  model.tick(Date.now() / 1000 + 60);
  assert.equal(model.workers.get("w@h")!.online, false);
});
