/**
 * Tasks for the leaked-thread tests: one that never yields, two whose
 * synchronous code outlives their hard limit but ends, one that naps.
 */

import { Celery } from "../../mod.ts";

export const app = new Celery();

/**
 * An endless synchronous loop with a 0.5 s hard limit: Deno's terminate()
 * does not stop it (denoland/deno#35657), so its thread runs on.
 */
export const spin = app.task("leak.spin", { timeLimit: 0.5 }, () => {
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
