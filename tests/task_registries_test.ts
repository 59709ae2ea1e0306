/**
 * What `inspect active` reports as a running task's `time_start`: the wall
 * clock at its start, as Celery's `time.time()`, even after the wall clock
 * stepped while the worker ran (NTP's correction, a VM resumed).
 */

import assert from "node:assert/strict";
import { encodeTaskMessage } from "../protocol.ts";
import { TaskRegistries } from "../src/worker/task_registries.ts";
import type { Running } from "../src/worker/worker_state.ts";
import { heldTaskOf } from "./helpers/run_info.ts";

/** Run `fn` with the wall clock (`Date.now`) moved by `step` ms. */
function stepped<T>(step: number, fn: () => T): T {
  const now = Date.now;
  Date.now = () => now() + step;
  try {
    return fn();
  } finally {
    Date.now = now;
  }
}

Deno.test("task registries: an active task's start is on the wall clock, stepped since the worker started", () => {
  const running = new Map<number, Running>();
  const registries = new TaskRegistries(running);
  const m = encodeTaskMessage({
    task: "add",
    id: "t1",
    args: [1, 2],
    kwargs: {},
    now: new Date(),
    origin: "gen1@vm",
    replyTo: "r",
  });
  const { req, delivery } = heldTaskOf(m);
  const started = performance.now() - 5_000; // handed over 5 s ago
  running.set(1, { req, delivery, acked: false, ackEnded: false, started, received: 1 });
  for (const step of [0, 3_600_000, -3_600_000]) {
    const [held] = stepped(step, () => registries.active());
    const expected = Date.now() + step - 5_000;
    assert.ok(
      Math.abs(held.since - expected) < 50,
      `step ${step}: started ${expected - held.since} ms off the wall clock 5 s ago`,
    );
  }
});

Deno.test("task registries: each read of an active task gives the same start, to the microsecond", () => {
  // Each inspect active reply gave the same running task a time_start up to 1 ms apart:
  // Date.now()'s whole milliseconds against performance.now()'s fractions, read anew.
  const running = new Map<number, Running>();
  const registries = new TaskRegistries(running);
  const m = encodeTaskMessage({
    task: "add",
    id: "t2",
    args: [],
    kwargs: {},
    now: new Date(),
    origin: "gen1@vm",
    replyTo: "r",
  });
  const { req, delivery } = heldTaskOf(m);
  running.set(1, {
    req,
    delivery,
    acked: false,
    ackEnded: false,
    started: performance.now(),
    received: 1,
  });
  const starts = new Set<number>();
  for (let i = 0; i < 200; i++) {
    starts.add(registries.active()[0].since);
    const until = performance.now() + 0.05;
    while (performance.now() < until) { /* let the clocks move apart by a fraction of a ms */ }
  }
  assert.equal(starts.size, 1, [...starts].join(", "));
});
