// deno-lint-ignore-file no-console
/**
 * A huge canvas on Redis (broker db 14, results db 15): `chain(noop,
 * group(N × noop))` applied by a client to an in-process worker (Web
 * Workers, concurrency 2), the group's members routed to a queue nobody
 * consumes. Measures how long `applyAsync` takes, how long the worker takes
 * to publish every member after it, the member publish rate, and the
 * longest stall of this process's event loop (a 10 ms timer's lateness).
 * Uses its own queue names and purges them, forgets the first step's
 * result; flushes nothing.
 * Run with `deno run -A bench/big_canvas.ts --members 200000`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type AsyncResult, chain, group } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { BACKEND_DB, BROKER_DB } from "./redis_workload.ts";
import { StallMeter } from "./stall_meter.ts";
import { app, noop } from "./tasks.ts";

/** What one run measured. */
export interface BigCanvasResult {
  /** Group members. */
  members: number;
  /** Seconds `applyAsync` took (building and publishing the chain's first message). */
  applySeconds: number;
  /** Seconds from `applyAsync`'s return until every member was in its queue. */
  publishSeconds: number;
  /** Members per second from `applyAsync`'s return until the last was in its queue. */
  membersPerSecond: number;
  /**
   * Members per second from the first in its queue to the last: the
   * worker's publish rate (null when all arrived between two polls).
   */
  publishRate: number | null;
  /** Longest event-loop stall, ms, over the whole run. */
  longestStallMs: number;
  /** Longest stall, ms, during `applyAsync`. */
  applyStallMs: number;
}

/**
 * Apply the canvas once and measure it.
 *
 * @example
 * ```ts ignore
 * const r = await runBigCanvas("redis://127.0.0.1:6379", 200_000);
 * ```
 *
 * @param redis Redis server URL
 * @param n group members
 * @returns the figures
 */
export async function runBigCanvas(redis: string, n: number): Promise<BigCanvasResult> {
  const url = (db: number) => Object.assign(new URL(redis), { pathname: `/${db}` }).href;
  const queue = `bigc-${crypto.randomUUID().slice(0, 8)}`;
  const members = `${queue}-members`;
  app.configure({ broker: url(BROKER_DB), backend: url(BACKEND_DB), defaultQueue: queue });
  const worker = new Worker({
    app,
    appModule: new URL("./tasks.ts", import.meta.url).href,
    queues: [queue],
    concurrency: 2,
  });
  await worker.start();
  const broker = await app.broker();
  const meter = new StallMeter();
  let forget = () => Promise.resolve();
  try {
    // Immutable: bench.noop takes no argument, so the first step's result would not fit (the
    // worker checks its follow-ups as Celery's apply_async does, and fails the first step).
    const next = group(Array.from({ length: n }, () => noop.si().set({ queue: members })));
    meter.take();
    const start = performance.now();
    const result = await chain(noop.s(), next).applyAsync();
    // The first step's result (its children: 11 MB at 200,000) is forgotten when done.
    forget = () => (result.parent as AsyncResult).forget();
    const applied = performance.now();
    const applyStallMs = meter.take();
    let longest = applyStallMs;
    let first = 0;
    for (let depth = 0; depth < n; depth = await broker.queueDepth(members)) {
      if (depth > 0 && first === 0) first = performance.now();
      await new Promise((r) => setTimeout(r, 50));
      longest = Math.max(longest, meter.take());
    }
    const published = performance.now();
    const publishSeconds = (published - applied) / 1000;
    return {
      members: n,
      applySeconds: (applied - start) / 1000,
      publishSeconds,
      membersPerSecond: n / publishSeconds,
      publishRate: first ? n / ((published - first) / 1000) : null,
      longestStallMs: Math.max(longest, meter.take()),
      applyStallMs,
    };
  } finally {
    meter.stop();
    await broker.purge(members);
    await forget();
    await worker.stop();
    await app.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      members: { type: "string", default: "200000" },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
    },
  });
  const r = await runBigCanvas(values.redis, Number(values.members));
  console.log(JSON.stringify(r));
}
