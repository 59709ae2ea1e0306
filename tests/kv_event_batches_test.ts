/**
 * Task events on the KV broker (review 37): a burst of tasks makes
 * `task.multi` batches of hundreds of events, over the broker's 60,000-byte
 * message limit; they go as several messages, so a monitor sees every task
 * received, started and finished (before, each oversized batch was refused
 * and dropped whole).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { app as tasksApp } from "./apps/worker_app.ts";

const APP_MODULE = new URL("./apps/worker_app.ts", import.meta.url).href;

for (const [task, args] of [["t.add", [2, 3]], ["t.fail", ["boom ".repeat(10)]]] as const) {
  Deno.test(`kv events: 400 queued ${task} tasks give 400 received, started and finished events`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-event-batches-test-" });
    const url = `kv://${dir}/broker.sqlite`;
    const queue = `evb-${crypto.randomUUID().slice(0, 8)}`;
    const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
    tasksApp.configure({ broker: url, backend: url, defaultQueue: queue });
    const worker = new Worker({
      app: tasksApp,
      appModule: APP_MODULE,
      queues: [queue],
      concurrency: 2,
      taskEvents: true,
      heartbeatInterval: 0,
    });
    const seen = new Map<string, number>();
    const ac = new AbortController();
    const stream = client.events.receive({ signal: ac.signal });
    const collected = (async () => {
      for await (const e of stream) seen.set(e.type, (seen.get(e.type) ?? 0) + 1);
    })();
    try {
      await new Promise((r) => setTimeout(r, 500));
      const N = 400;
      const results = [];
      for (let i = 0; i < N; i++) results.push(await client.sendTask(task, [...args]));
      await worker.start();
      await Promise.allSettled(results.map((r) => r.get({ timeout: 60_000 })));
      const done = task === "t.add" ? "task-succeeded" : "task-failed";
      const want = { "task-received": N, "task-started": N, [done]: N };
      const until = Date.now() + 20_000;
      const counts = () => Object.fromEntries(Object.keys(want).map((k) => [k, seen.get(k) ?? 0]));
      while (JSON.stringify(counts()) !== JSON.stringify(want) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(counts(), want);
    } finally {
      ac.abort();
      await collected.catch(() => {});
      await worker.stop();
      await client.close();
      await tasksApp.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
