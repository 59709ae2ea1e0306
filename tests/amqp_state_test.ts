import assert from "node:assert/strict";
import {
  backoffDelay,
  type ConnectionEvent,
  nextState,
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

Deno.test("amqp state: only RabbitMQ closing a young connection counts as a refusal", () => {
  const closed = (code: number) => Object.assign(new Error("closed by RabbitMQ"), { code });
  const soon = STABLE_CONNECTION_MS - 1;
  assert.equal(refusalsAfter(0, soon, closed(540)), 1);
  assert.equal(refusalsAfter(3, soon, closed(530)), 4);
  assert.equal(refusalsAfter(3, STABLE_CONNECTION_MS, closed(540)), 0, "an old connection");
  // Before, these counted too: a flapping network logged ERROR with a doubling backoff.
  assert.equal(refusalsAfter(1, 6_000, new Error("Unexpected close")), 0);
  assert.equal(refusalsAfter(1, 6_000, new Error("Heartbeat timeout")), 0);
  assert.equal(
    refusalsAfter(1, 6_000, Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })),
    0,
  );
  assert.equal(refusalsAfter(1, 6_000, undefined), 0);
});
