/** Tasks for the pool tests: time limits, lost Web Workers, recycling, sandboxes. */

import { Celery } from "../../mod.ts";

export const app = new Celery();

/** Differs in every Web Worker: each imports this module afresh. */
const WID = crypto.randomUUID();
/** Top-level code may use what the process has (ioredis's `debug` lists the environment). */
const ENV_AT_LOAD = Object.keys(Deno.env.toObject()).length > 0;
let ran = 0;
const kept: unknown[] = [];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Which Web Worker ran it, and how many tasks that Web Worker ran so far. */
export const wid = app.task("p.wid", (tag: unknown = undefined) => ({ wid: WID, n: ++ran, tag }));

/** Blocks its Web Worker for `ms` (a synchronous loop): one Web Worker runs one at a time. */
export const block = app.task("p.block", (ms: number) => {
  const start = Date.now();
  while (Date.now() - start < ms) {
    // busy: the Web Worker's event loop does not turn
  }
  return { wid: WID, start, end: Date.now() };
});

/** Sleeps, ignoring its AbortSignal (only a hard limit stops it). */
export const nap = app.task("p.nap", async (ms: number) => {
  await sleep(ms);
  return { wid: WID, ms };
});

/** The same, late-acknowledged. */
export const napLate = app.task("p.nap_late", { acksLate: true }, async (ms: number) => {
  await sleep(ms);
  return { wid: WID, ms };
});

/** Hard limit from its own options. */
export const stuck = app.task("p.stuck", { timeLimit: 0.5 }, async () => {
  await sleep(60_000);
  return "never";
});

/**
 * A synchronous loop that does not yield for 5 s, ten times its limit: only terminating the
 * Web Worker ends it within the limit. Not an endless loop: Deno's terminate() does not stop one
 * (denoland/deno#35657), which then kept a core busy until the test process exited (80 s of CPU
 * in worker_pool's 43 s alone; in deno task test, every file after it ran beside two of them).
 */
export const spin = app.task("p.spin", { timeLimit: 0.5 }, () => {
  const end = Date.now() + 5000;
  while (Date.now() < end) {
    // does not yield
  }
  return "not stopped";
});

/** Waits for its soft limit, cleans up and returns. */
export const softCleanup = app.task(
  "p.soft_cleanup",
  { bind: true, softTimeLimit: 0.3 },
  async (ctx) => {
    await new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r(), { once: true }));
    return { cleaned: true, reason: (ctx.signal.reason as Error).name, wid: WID };
  },
);

/** Waits for its soft limit and throws something else. */
export const softThrow = app.task("p.soft_throw", { bind: true }, async (ctx) => {
  await new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r(), { once: true }));
  throw new Error("cleanup failed");
});

/**
 * Kills its Web Worker with an uncaught error on its first delivery;
 * succeeds when redelivered.
 */
export const crashOnce = app.task(
  "p.crash_once",
  { bind: true, acksLate: true, rejectOnWorkerLost: true },
  (ctx) => {
    if (ctx.deliveryInfo.redelivered) return { survived: true, wid: WID };
    setTimeout(() => {
      throw new Error("uncaught error inside the Web Worker");
    }, 0);
    return new Promise(() => {});
  },
);

/** Kills its Web Worker; late ack, but fails rather than requeue. */
export const crashLate = app.task("p.crash_late", { acksLate: true }, () => {
  setTimeout(() => {
    throw new Error("uncaught error inside the Web Worker");
  }, 0);
  return new Promise(() => {});
});

/** Keeps `mib` MiB alive in this Web Worker. */
export const hog = app.task("p.hog", (mib: number) => {
  kept.push(new Uint8Array(mib * 1024 * 1024).fill(1));
  return { wid: WID };
});

const FIXTURE = new URL("./pool_fixture.txt", import.meta.url).pathname;

/** Reads a file next to this module: allowed for this one file only. */
export const readAllowed = app.task(
  "p.read_allowed",
  { permissions: { read: [FIXTURE] } },
  async () => ({ text: (await Deno.readTextFile(FIXTURE)).trim(), wid: WID }),
);

/** Reads this module's own source: not granted (the module directory is not readable). */
export const readOwnSource = app.task(
  "p.read_own_source",
  { permissions: { read: [FIXTURE] } },
  async () => (await Deno.readTextFile(new URL(import.meta.url).pathname)).length,
);

/** Reads an environment variable without env permission. */
export const envDenied = app.task(
  "p.env_denied",
  { permissions: "none" },
  () => Deno.env.get("HOME") ?? null,
);

/** Imports a module from an address without import (or net) permission. */
export const importUrl = app.task(
  "p.import_url",
  { permissions: "none" },
  async (url: string) => Object.keys(await import(url)),
);

/** Same sandbox, fine: no permission needed. */
export const pure = app.task("p.pure", { permissions: "none" }, (n: number) => ({
  n: n * 2,
  wid: WID,
  envAtLoad: ENV_AT_LOAD,
}));
