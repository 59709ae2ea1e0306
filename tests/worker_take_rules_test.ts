/**
 * The worker's take rules, pure: how many messages the take loop asks for
 * (consumer.ts), the pool's task slots (pool_setup.ts) and which running
 * tasks a terminating revoke stops (revoke.ts).
 */

import assert from "node:assert/strict";
import { takeBudget } from "../src/worker/consumer.ts";
import { poolSlots } from "../src/worker/pool_setup.ts";
import { DEFAULT_PREFETCH_MAX } from "../src/worker/prefetch_window.ts";
import { toTerminate } from "../src/worker/revoke.ts";

const idle = { capacity: 64, window: 64, running: 0, etaHeld: 0, backlog: 0 };

Deno.test("take budget: the narrower of the pool's slots and the window, less what runs", () => {
  assert.deepEqual(takeBudget({ ...idle, window: 8, running: 3 }), {
    slots: 8,
    room: 5,
    free: 5,
    full: false,
  });
  assert.deepEqual(takeBudget({ ...idle, capacity: 4, window: 8, running: 1 }), {
    slots: 4,
    room: 3,
    free: 3,
    full: false,
  });
  const busy = takeBudget({ ...idle, window: 8, running: 8 });
  assert.equal(busy.free, 0);
  assert.equal(busy.full, true);
});

Deno.test("take budget: the ETA task limit caps a take, reached it stops taking", () => {
  assert.equal(takeBudget({ ...idle, etaHeld: 95, etaTaskLimit: 100 }).free, 5);
  const reached = takeBudget({ ...idle, etaHeld: 100, etaTaskLimit: 100 });
  assert.equal(reached.free, 0);
  assert.equal(reached.full, true);
  assert.equal(reached.room, 64, "the slots stay free: only the ETA limit holds off");
});

Deno.test("take budget: tasks waiting for a rate token hold off takes from max(100, 4 × capacity)", () => {
  assert.equal(takeBudget({ ...idle, capacity: 8, window: 8, backlog: 99 }).full, false);
  assert.equal(takeBudget({ ...idle, capacity: 8, window: 8, backlog: 100 }).full, true);
  assert.equal(takeBudget({ ...idle, backlog: 255 }).full, false);
  assert.equal(takeBudget({ ...idle, backlog: 256 }).full, true);
});

Deno.test("pool slots: prefetch, else the window's default maximum, or 100 for the inline pool", () => {
  assert.equal(poolSlots({}), DEFAULT_PREFETCH_MAX);
  assert.equal(poolSlots({ pool: "threads" }), DEFAULT_PREFETCH_MAX);
  assert.equal(poolSlots({ pool: "inline" }), 100);
  assert.equal(poolSlots({ prefetch: 8 }), 8);
  assert.equal(poolSlots({ pool: "inline", prefetch: 8 }), 8);
});

Deno.test("revoke: terminate picks the running tasks with the ids, not those already terminating", () => {
  const running = new Map([
    [1, { req: { id: "a" } }],
    [2, { req: { id: "b" } }],
    [3, { req: { id: "a" } }],
    [4, { req: { id: "c" } }],
  ]);
  assert.deepEqual(toTerminate(running, new Set([2]), ["a", "b", "x"]), {
    seqs: [1, 3],
    ids: ["a", "a"],
  });
  assert.deepEqual(toTerminate(running, new Set(), []), { seqs: [], ids: [] });
});
