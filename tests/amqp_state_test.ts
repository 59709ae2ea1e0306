import assert from "node:assert/strict";
import { backoffDelay, type ConnectionEvent, nextState } from "../src/broker/amqp_state.ts";

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
