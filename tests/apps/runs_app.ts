/**
 * Tasks that note each run in a file, for the tests of what a terminated
 * Web Worker's thread still runs: the file outlives the thread.
 */

import { Celery } from "../../mod.ts";
import { exists } from "../helpers/waits.ts";

/** Configured by each test before a pool starts. */
export const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });

/** Spins `ms` of synchronous CPU work, then appends its id to `file`. */
export const spinNoted = app.task("runs.spin", { bind: true }, (ctx, ms: number, file: string) => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // CPU-bound on purpose: the Web Worker runs nothing else meanwhile
  }
  Deno.writeTextFileSync(file, `${ctx.id}\n`, { append: true });
  return ms;
});

/** Writes `<path>.started`, then spins until `path` exists: the Web Worker runs nothing else meanwhile. */
export const block = app.task("runs.block", (path: string) => {
  Deno.writeTextFileSync(`${path}.started`, "");
  for (;;) {
    try {
      Deno.statSync(path);
      return path;
    } catch {
      // not yet
    }
  }
});

/** Writes `<path>.started`, then awaits until `path` exists: the Web Worker runs other tasks meanwhile. */
export const awaitGate = app.task("runs.await", async (path: string) => {
  Deno.writeTextFileSync(`${path}.started`, "");
  for (;;) {
    try {
      Deno.statSync(path);
      return path;
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
});

/**
 * Writes `<path>.started`, spins until `<path>.free` exists (the Web Worker runs nothing else
 * meanwhile, not even a task handed to it), then awaits until `path` exists (it runs other tasks
 * meanwhile).
 */
export const holdThenAwait = app.task("runs.holdThenAwait", async (path: string) => {
  Deno.writeTextFileSync(`${path}.started`, "");
  while (!exists(`${path}.free`)) {
    // holds the thread
  }
  while (!exists(path)) await new Promise((r) => setTimeout(r, 10));
  return path;
});
