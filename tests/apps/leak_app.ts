/** Tasks for the leaked-thread tests: one that never yields, one that naps. */

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

/** Sleeps `ms` and returns it. */
export const nap = app.task("leak.nap", async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
});
