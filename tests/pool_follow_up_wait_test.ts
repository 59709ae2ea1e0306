/**
 * A task starts without waiting for the outcome of a task whose follow-up
 * code (an `onSuccess` hook, an in-process errback) is still under way: that
 * code may await the very task about to start. With one slot (c=1), a
 * 5 ms task whose hook awaited a child stalled its Web Worker for good (8488e73:
 * every start waited for finished outcomes worth ≥ 1 ms to be handed on, and
 * that outcome waited for its hook), as did a no-op with a hard time limit
 * whose hook awaited a child with one (d62aeb2: such a child waited for the
 * outcomes of tasks that finished while a hard-limited one ran); here the
 * follow-up's child times out after 8 s, so before the fix the parent (or
 * the later tasks) was not done within 5 s. Real Redis, threads and inline
 * pools.
 */

import assert from "node:assert/strict";
import { Worker } from "../src/worker/worker.ts";
import { add, app, eb, spinFail, spinOk } from "./apps/follow_up_app.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";

const APP_MODULE = new URL("./apps/follow_up_app.ts", import.meta.url).href;
const cases = [
  { name: "an onSuccess hook awaits a child", send: () => spinOk.delay(5, false) },
  {
    name: "a hard-limited no-op's onSuccess hook awaits a hard-limited child",
    send: () => spinOk.applyAsync([0, true], { timeLimit: 30 }),
  },
  {
    name: "an in-process errback awaits a child",
    send: () => spinFail.s(5).onError(eb.s()).applyAsync(),
  },
];

for (const pool of ["threads", "inline"] as const) {
  for (const c of cases) {
    Deno.test(`${pool} pool, c=1: ${c.name}; it and later tasks finish`, async () => {
      const prefix = uniquePrefix("follow-up-wait");
      const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
      const queue = `fu-${crypto.randomUUID().slice(0, 8)}`;
      app.configure({ broker: url, backend: url, defaultQueue: queue });
      const worker = new Worker({
        app,
        appModule: APP_MODULE,
        queues: [queue],
        concurrency: 1,
        pool,
        hostname: `follow-up-${pool}@test`,
      });
      try {
        await worker.start();
        const parent = await c.send();
        // Before: not done in 5 s (its follow-up code waited for a child that never started).
        await parent.get({ timeout: 5_000 }).catch((err) => {
          if (!/on purpose/.test(String(err))) throw err;
        });
        const later = await Promise.all([0, 1, 2].map((i) => add.delay(i, i)));
        const sums = await Promise.all(later.map((r) => r.get({ timeout: 5_000 })));
        assert.deepEqual(sums, [0, 2, 4]);
      } finally {
        await worker.stop();
        await app.close();
        await deleteKeys(prefix);
      }
    });
  }
}
