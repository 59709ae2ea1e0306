/** Tasks for the pool ring tests: one that holds its thread, one an abort ends, one posting strays. */

/// <reference lib="deno.worker" />

import { Celery } from "../../mod.ts";

export const app = new Celery({ broker: "kv://:memory:" });

/** Holds its Web Worker's thread for `ms` milliseconds. */
export const spin = app.task("ro.spin", (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // CPU-bound on purpose: what the main thread sends meanwhile waits
  }
  return "spun";
});

/** Waits `ms` milliseconds unless aborted first; fails when aborted. */
export const wait = app.task(
  "ro.wait",
  { bind: true },
  (ctx, ms: number) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => resolve("not aborted"), ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(t);
        reject(new Error("aborted"));
      }, { once: true });
    }),
);

/** Posts `n` messages of its own, then a state it does not wait for, then returns. */
export const strayThenState = app.task("ro.stray_state", { bind: true }, (ctx, n: number) => {
  for (let i = 0; i < n; i++) self.postMessage({ hello: i });
  void ctx.updateState({ state: "PROGRESS", meta: { n } });
  return n;
});
