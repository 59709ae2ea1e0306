import assert from "node:assert/strict";
import {
  backoffDelay,
  closedByServer,
  type ConnectionEvent,
  nextState,
  refusalDelay,
  refusalsAfter,
  STABLE_CONNECTION_MS,
} from "../src/broker/amqp_state.ts";

Deno.test("amqp state: a connection's life, drop and recovery", () => {
  const path: [ConnectionEvent, string][] = [
    ["start", "connecting"],
    ["connected", "open"],
    ["dropped", "lost"],
    ["retry", "connecting"],
    ["failed", "lost"],
    ["retry", "connecting"],
    ["connected", "open"],
    ["close", "closed"],
  ];
  let s: ReturnType<typeof nextState> = "idle";
  for (const [event, expected] of path) {
    s = nextState(s, event);
    assert.equal(s, expected, `after ${event}`);
  }
});

Deno.test("amqp state: events that do not apply leave the state alone; closed is final", () => {
  assert.equal(nextState("open", "retry"), "open");
  assert.equal(nextState("lost", "connected"), "lost");
  assert.equal(nextState("idle", "dropped"), "idle");
  for (const e of ["start", "connected", "failed", "dropped", "retry"] as const) {
    assert.equal(nextState("closed", e), "closed");
  }
  for (const s of ["idle", "connecting", "open", "lost"] as const) {
    assert.equal(nextState(s, "close"), "closed");
  }
});

Deno.test("amqp state: backoff doubles from the initial delay up to the cap, with jitter on top", () => {
  const none = { initialMs: 100, maxMs: 10_000, jitter: 0 };
  assert.deepEqual(
    [1, 2, 3, 4, 8, 50].map((a) => backoffDelay(a, none)),
    [100, 200, 400, 800, 10_000, 10_000],
  );
  assert.equal(backoffDelay(2, { initialMs: 100, jitter: 0.5 }, () => 0.5), 250);
  assert.equal(backoffDelay(50, { maxMs: 1000, jitter: 0.5 }, () => 0.99), 1000);
});

Deno.test("amqp state: repeated quick drops back off whatever the cause; the cause picks the log", () => {
  // A proxy that cuts every new connection: the drops in a row must add up to a doubling delay.
  // Before, a drop without a numeric reply code reset the count to 0: ~8 reconnects a second.
  const soon = STABLE_CONNECTION_MS - 1;
  let drops = 0;
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    drops = refusalsAfter(drops, soon);
    delays.push(refusalDelay(drops, () => 0));
  }
  assert.deepEqual(delays, [0, 500, 1000, 2000, 4000]);
  assert.equal(refusalsAfter(drops, STABLE_CONNECTION_MS), 0, "an old connection");
  const causes: unknown[] = [
    Object.assign(new Error("closed by RabbitMQ"), { code: 540 }),
    new Error("Unexpected close"),
    new Error("Heartbeat timeout"),
    Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }),
    undefined,
  ];
  assert.deepEqual(causes.map(closedByServer), [true, false, false, false, false]);
});
