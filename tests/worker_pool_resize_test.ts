/**
 * Resizing the pool of Web Workers at run time (`pool_grow` / `pool_shrink`,
 * Celery 5.2's remote-control commands): a worker started with
 * `concurrency: 1` grows to 3 Web Workers and runs 3 blocking tasks at
 * once, then shrinks back to 1 while they run, losing none; `stats` follows
 * the size. On Redis and the embedded KV store; the inline pool answers a
 * clear error. Then Python Celery's `control pool_grow` gets Celery's reply.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { app as poolApp } from "./apps/pool_app.ts";
import { app as plainApp } from "./apps/worker_app.ts";
import { app as interopApp } from "./interop/tasks.ts";
import { CeleryCliSession } from "./helpers/interop.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_REDIS } from "./helpers/services.ts";

const POOL_APP = new URL("./apps/pool_app.ts", import.meta.url).href;
const INTEROP_APP = new URL("./interop/tasks.ts", import.meta.url).href;
const redisPrefix = uniquePrefix("resize");
const kvDir = await Deno.makeTempDir({ prefix: "celeriac-resize-test-" });

const transports: { name: string; url: string }[] = [
  { name: "redis", url: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(redisPrefix)}` },
  { name: "kv", url: `kv://${kvDir}/resize.sqlite` },
];

interface Block {
  wid: string;
  start: number;
  end: number;
}

/** What `inspect stats` says of the pool. */
async function poolStats(client: Celery, node: string): Promise<Record<string, unknown>> {
  const stats = await client.control.inspect({ timeout: 3, destination: [node] }).stats();
  assert.ok(stats[node], `no stats reply from ${node}`);
  return stats[node].pool as Record<string, unknown>;
}

async function control(client: Celery, node: string, method: string, n: number) {
  const replies = await client.control.broadcast(method, { n }, {
    reply: true,
    timeout: 3,
    destination: [node],
  });
  assert.equal(replies.length, 1, `one reply to ${method}`);
  return replies[0][node];
}

/** Whether some instant lies inside every run. */
function overlap(runs: Block[]): boolean {
  return Math.max(...runs.map((r) => r.start)) < Math.min(...runs.map((r) => r.end));
}

for (const t of transports) {
  Deno.test({
    name: `pool resize on ${t.name}: -c 1 grows to 3 and runs 3 blocking tasks at once, ` +
      `shrinks to 1 losing no running task`,
    ignore: t.name === "redis" && WITHOUT_REDIS,
    fn: async () => {
      const queue = `rq-${crypto.randomUUID().slice(0, 8)}`;
      poolApp.configure({ broker: t.url, backend: t.url, defaultQueue: queue });
      const client = new Celery({ broker: t.url, backend: t.url, defaultQueue: queue });
      const node = `resize-${crypto.randomUUID().slice(0, 8)}@test`;
      const worker = new Worker({
        app: poolApp,
        appModule: POOL_APP,
        queues: [queue],
        concurrency: 1,
        hostname: node,
      });
      await worker.start();
      try {
        // pool_app's tasks form 3 sandbox groups, each with `concurrency` Web Workers;
        // pool_grow / pool_shrink resize the default one (tasks without a sandbox).
        let pool = await poolStats(client, node);
        const base = pool["max-concurrency"] as number;
        assert.equal(base, 3, "3 sandbox groups × 1 Web Worker");
        assert.equal((pool.processes as number[]).length, base);

        // One Web Worker runs synchronous tasks one after another.
        const serial = await Promise.all(
          [0, 1].map(() => client.sendTask<Block>("p.block", [400])),
        );
        const serialRuns = await Promise.all(serial.map((r) => r.get({ timeout: 20_000 })));
        assert.equal(new Set(serialRuns.map((r) => r.wid)).size, 1);
        assert.ok(!overlap(serialRuns), "one Web Worker: blocking tasks do not overlap");

        assert.deepEqual(await control(client, node, "pool_grow", 2), { ok: "pool will grow" });
        pool = await poolStats(client, node);
        assert.equal(pool["max-concurrency"], base + 2);
        assert.equal((pool.processes as number[]).length, base + 2);
        assert.equal(pool.slots, (base + 2) * 64, "Web Workers × 64 slots (the default prefetch)");

        const three = await Promise.all(
          [0, 1, 2].map(() => client.sendTask<Block>("p.block", [3000])),
        );
        const threeRuns = await Promise.all(three.map((r) => r.get({ timeout: 30_000 })));
        assert.equal(new Set(threeRuns.map((r) => r.wid)).size, 3, "each in its own Web Worker");
        assert.ok(overlap(threeRuns), "the 3 blocking tasks ran at once");

        // Shrink while 3 tasks run: the retired Web Workers finish theirs first.
        const running = await Promise.all(
          [0, 1, 2].map(() => client.sendTask<Block>("p.block", [2000])),
        );
        const started = Date.now();
        while (worker.active < 3 && Date.now() - started < 20_000) {
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(worker.active, 3, "3 tasks running before the shrink");
        assert.deepEqual(await control(client, node, "pool_shrink", 2), {
          ok: "pool will shrink",
        });
        const survived = await Promise.all(running.map((r) => r.get({ timeout: 30_000 })));
        assert.equal(survived.length, 3, "no running task lost");
        assert.equal(new Set(survived.map((r) => r.wid)).size, 3);
        pool = await poolStats(client, node);
        assert.equal(pool["max-concurrency"], base);
        assert.equal((pool.processes as number[]).length, base);

        const after = await Promise.all(
          [0, 1, 2].map(() => client.sendTask<Block>("p.block", [200])),
        );
        const afterRuns = await Promise.all(after.map((r) => r.get({ timeout: 20_000 })));
        assert.equal(new Set(afterRuns.map((r) => r.wid)).size, 1, "one Web Worker left");

        const below = await control(client, node, "pool_shrink", 1) as { error: string };
        assert.match(below.error, /^RangeError\('Cannot shrink the pool by 1: it has 1/);
        assert.equal((await poolStats(client, node))["max-concurrency"], base);
      } finally {
        await worker.stop();
        await client.close();
        await poolApp.close();
      }
    },
  });
}

Deno.test("pool resize: the inline pool answers pool_grow with a clear error", async () => {
  const url = `kv://${kvDir}/inline.sqlite`;
  const queue = `rq-${crypto.randomUUID().slice(0, 8)}`;
  plainApp.configure({ broker: url, backend: url, defaultQueue: queue });
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const node = `inline-${crypto.randomUUID().slice(0, 8)}@test`;
  const worker = new Worker({ app: plainApp, pool: "inline", queues: [queue], hostname: node });
  await worker.start();
  try {
    const reply = await control(client, node, "pool_grow", 1) as { error: string };
    assert.match(reply.error, /^RangeError\('The inline pool .* cannot grow or shrink/);
    assert.equal((await poolStats(client, node))["max-concurrency"], 1);
  } finally {
    await worker.stop();
    await client.close();
    await plainApp.close();
  }
});

// ------------------------------------------------------------ interop

Deno.test({
  name: "pool resize interop: celery control pool_grow / inspect stats on a Celeriac worker",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-resize-${crypto.randomUUID().slice(0, 8)}`;
  const node = `celeriac-${queue}@interop`;
  const broker = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(redisPrefix)}`;
  // What Python's CLI talks to is the remote control, not the CLI: an in-process worker answers.
  interopApp.configure({ broker, backend: REDIS_URL, defaultQueue: queue });
  const worker = new Worker({
    app: interopApp,
    appModule: INTEROP_APP,
    queues: [queue],
    concurrency: 1,
    hostname: node,
  });
  await worker.start();
  // The commands below run Python's `celery` entry point in this one Python process.
  const cli = new CeleryCliSession({
    CELERY_BROKER_URL: REDIS_URL,
    CELERY_RESULT_BACKEND: REDIS_URL,
    INTEROP_KEYPREFIX: redisPrefix,
    INTEROP_QUEUE: queue,
    INTEROP_MARKER_REDIS: REDIS_URL,
  });
  const celery = async (args: string[]) => {
    const out = await cli.run([...args, "-d", node, "-t", "5"]);
    return { code: out.code, text: out.stdout + out.stderr };
  };
  try {
    const grow = await celery(["control", "pool_grow", "1"]);
    assert.equal(grow.code, 0, grow.text);
    assert.match(grow.text, new RegExp(`${node}: OK\\s+pool will grow`));
    const stats = await celery(["inspect", "stats", "--json"]);
    assert.equal(stats.code, 0, stats.text);
    const pool = JSON.parse(stats.text)[node].pool;
    assert.equal(pool["max-concurrency"], 2);
    assert.equal(pool.processes.length, 2);
    const shrink = await celery(["control", "pool_shrink", "1"]);
    assert.match(shrink.text, new RegExp(`${node}: OK\\s+pool will shrink`));
    const below = await celery(["control", "pool_shrink", "1"]);
    assert.match(below.text, new RegExp(`${node}: ERROR\\s+RangeError\\('Cannot shrink`));
  } finally {
    await cli.close();
    await worker.stop();
    await interopApp.close();
  }
});

Deno.test("pool resize: clean up", async () => {
  if (!WITHOUT_REDIS) await deleteKeys(redisPrefix);
  await Deno.remove(kvDir, { recursive: true });
});
