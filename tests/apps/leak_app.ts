/**
 * Tasks for the leaked-thread tests: one that never yields, two whose
 * synchronous code outlives their hard limit but ends, one that naps.
 *
 * The loops lower their own thread's priority to the lowest (nice 19) first:
 * each keeps a thread runnable (what the worker looks for) for seconds, and at
 * normal priority it took a core from the test files running beside this one
 * (`deno task test` keeps both CI cores busy). A niced loop still runs, on a
 * core nothing else wants.
 */

import { setPriority } from "node:os";
import { Celery } from "../../mod.ts";
import { ownThreadId } from "../../src/worker/thread_self.ts";

export const app = new Celery();

/** Lower this thread to nice 19 (Linux: a thread id is a pid to setpriority); kept as is when refused. */
function lowestPriority(): void {
  const tid = ownThreadId();
  try {
    if (tid !== undefined) setPriority(tid, 19);
  } catch {
    // --allow-sys=setPriority not granted: the loop runs at the worker's priority
  }
}

/**
 * An endless synchronous loop with a 0.5 s hard limit: Deno's terminate()
 * does not stop it (denoland/deno#35657), so its thread runs on.
 */
export const spin = app.task("leak.spin", { timeLimit: 0.5 }, () => {
  lowestPriority();
  for (;;) {
    // never yields
  }
});

/** Blocked 4 s in a synchronous call (0 % of a core) with a 0.5 s hard limit: not a leak. */
export const block = app.task("leak.block", { timeLimit: 0.5 }, () => {
  new Deno.Command("sleep", { args: ["4"] }).outputSync();
});

/** A synchronous computation of 3 s with a 0.5 s hard limit: its thread ends, not a leak. */
export const crunch = app.task("leak.crunch", { timeLimit: 0.5 }, () => {
  lowestPriority();
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    // computing
  }
});

/** Sleeps `ms` and returns it. */
export const nap = app.task("leak.nap", async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
});
