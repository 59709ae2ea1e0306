/**
 * The Celeriac side of the benchmark: an app with one no-op task, served by
 * `deno run -A worker.ts --app bench/tasks.ts -Q bench`.
 *
 * Broker and backend come from CELERY_BROKER_URL / CELERY_RESULT_BACKEND
 * (the bench sets them); tasks go to the `bench` queue.
 *
 * @module
 */

import { Celery } from "../mod.ts";

/** Queue the benchmark tasks go to, on both sides. */
export const BENCH_QUEUE = "bench";

/** The benchmark app. */
export const app = new Celery({ defaultQueue: BENCH_QUEUE });

/** Does nothing and returns a small value; `bench.noop` in Python too. */
export const noop = app.task("bench.noop", () => 1);

/** Busy-loops for `ms` milliseconds and returns 1: the CPU-bound task of workload D; `bench.spin` in Python too. */
export const spin = app.task("bench.spin", (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin: CPU-bound on purpose
  }
  return 1;
});

/** Tags the Web Worker (each imports this module on its own) in {@link spinTimed}'s results. */
const THREAD_TAG = crypto.randomUUID().slice(0, 8);

/** Nanoseconds this thread has waited on a run queue, from its schedstat (Linux; 0 elsewhere). */
function runQueueWaitNs(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[1]);
  } catch {
    return 0;
  }
}

/**
 * As {@link spin}, but returns when it ran: `[thread tag, start, end,
 * run-queue wait at start, at end]`, start and end in epoch milliseconds
 * with sub-millisecond precision, waits in ns (bench/cpu_probe.ts lays
 * the tasks out per Web Worker with them, and tells how much of the time
 * between tasks the thread waited for a CPU).
 */
export const spinTimed = app.task("bench.spin_timed", (ms: number) => {
  const waitStart = runQueueWaitNs();
  const start = performance.now();
  const end = start + ms;
  let now = start;
  while (now < end) now = performance.now();
  return [
    THREAD_TAG,
    performance.timeOrigin + start,
    performance.timeOrigin + now,
    waitStart,
    runQueueWaitNs(),
  ];
});

/** A chord body: the sum of its header's results; `bench.tsum` in Python too. */
export const tsum = app.task("bench.tsum", (xs: number[]) => xs.reduce((a, b) => a + b, 0));

/** Returns the wall-clock time it ran at (ms, `performance.timeOrigin + performance.now()`): bench/rtt_breakdown.ts lines it up with the other steps of a round trip. */
export const stamp = app.task("bench.stamp", () => performance.timeOrigin + performance.now());
