/** Tasks for the first-contact tests (issue 8): values that cannot be stored, large results. */

import { Celery } from "../../mod.ts";
import { threadCpuClock } from "../../src/worker/cpu_share.ts";

/** Configured by each test before a worker starts. */
export const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });

/** Returns a function: JSON cannot carry it. */
export const returnsFunction = app.task("fc.returns_function", () => () => 1);

/** Throws a plain object instead of an Error. */
export const throwsObject = app.task("fc.throws_object", () => {
  throw { code: 42 };
});

/** Returns a string of `n` characters. */
export const big = app.task("fc.big", (n: number) => "y".repeat(n));

/** Busy for `ms` milliseconds of synchronous CPU work; returns the worker's node name. */
export const spin = app.task("fc.spin", { bind: true }, (ctx, ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // CPU-bound on purpose: the Web Worker runs nothing else meanwhile
  }
  return ctx.hostname;
});

/**
 * Stuck in synchronous code until `path` exists, then writes `<path>.done`:
 * a task that outlasts any limit however late its timer fires, and ends
 * when its test says (a terminated Web Worker's thread runs on until then).
 */
export const block = app.task("fc.block", (path: string) => {
  for (;;) {
    try {
      Deno.statSync(path);
      break;
    } catch {
      // not yet
    }
  }
  Deno.writeTextFileSync(`${path}.done`, "");
  return path;
});

/** Awaits for `ms` milliseconds, holding its Web Worker's thread for none of them. */
export const nap = app.task("fc.nap", async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
});

/** Tells this module's copies apart: each Web Worker imports its own. */
const COPY = crypto.randomUUID();

/** This thread's CPU time in ms (Linux), else the wall clock; set at a task's first run. */
let cpuClock: (() => number) | undefined;

/**
 * Awaits `napMs` (I/O, say), then spins `spinMs` of this thread's CPU time
 * (of the wall clock where that cannot be read); returns the worker's node
 * name and which Web Worker ran it. Its blocking time before the first
 * await is nearly nothing, its CPU time is `spinMs` on a loaded host too:
 * spun on the wall clock, a thread given a sixth of a core used a sixth.
 */
export const napThenSpin = app.task(
  "fc.nap_then_spin",
  { bind: true },
  async (ctx, napMs: number, spinMs: number) => {
    await new Promise((r) => setTimeout(r, napMs));
    cpuClock ??= threadCpuClock() ?? (() => performance.now());
    const end = cpuClock() + spinMs;
    while (cpuClock() < end) {
      // CPU-bound after the await: the Web Worker runs nothing else meanwhile
    }
    return [ctx.hostname, COPY];
  },
);
