/**
 * Rate limits on real transports: global across workers on Redis (one
 * token bucket in Redis), per worker on the KV store; rate-limited tasks
 * wait without delaying other tasks and are requeued, not lost, at
 * shutdown. Spacing is asserted on start times the tasks record.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { openBroker } from "../protocol.ts";
import { RATE_LIMIT_KEY_PREFIX } from "../transports.ts";
import { Worker } from "../src/worker/worker.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const redisPrefix = uniquePrefix("ratelimit");
const REDIS = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(redisPrefix)}`;
const kvDir = await Deno.makeTempDir({ prefix: "celeriac-ratelimit-test-" });

/** An app whose tasks return when they started. */
function tasksApp(url: string, rateLimit: string) {
  const app = new Celery({ broker: url, backend: url });
  const tick = app.task("rl.tick", { rateLimit }, (_n: number) => Date.now());
  const free = app.task("rl.free", () => Date.now());
  return { app, tick, free };
}

function spans(starts: number[], every: number): number[] {
  const s = [...starts].sort((a, b) => a - b);
  return s.slice(every).map((t, i) => t - s[i]);
}

Deno.test({
  name: "rate limit on redis: two workers share one limit, and unlimited tasks pass meanwhile",
  ignore: WITHOUT_REDIS,
}, async () => {
  const name = crypto.randomUUID().slice(0, 8);
  const [qa, qb] = [`rla-${name}`, `rlb-${name}`];
  const a = tasksApp(REDIS, "10/s");
  const b = tasksApp(REDIS, "10/s");
  const client = new Celery({ broker: REDIS, backend: REDIS });
  const wa = new Worker({ app: a.app, pool: "inline", queues: [qa], prefetch: 4 });
  const wb = new Worker({ app: b.app, pool: "inline", queues: [qb], prefetch: 4 });
  await wa.start();
  await wb.start();
  try {
    // Each worker consumes its own queue: only a limit shared through Redis spaces them all.
    const ticks = await Promise.all(
      Array.from(
        { length: 30 },
        (_, i) => client.sendTask<number>("rl.tick", [i], { queue: i % 2 ? qb : qa }),
      ),
    );
    const sentFree = Date.now();
    const free = await client.sendTask<number>("rl.free", [], { queue: qa });
    const freeStart = await free.get({ timeout: 10_000 });
    const starts = await Promise.all(ticks.map((r) => r.get({ timeout: 20_000 })));
    const sorted = [...starts].sort((x, y) => x - y);
    assert.ok(
      sorted[29] - sorted[0] >= 2500,
      `30 runs at 10/s span ${sorted[29] - sorted[0]} ms`,
    );
    for (const span of spans(starts, 10)) assert.ok(span >= 900, `10 runs within ${span} ms`);
    assert.equal(wa.stats.succeeded + wb.stats.succeeded, 31);
    assert.ok(wb.stats.succeeded >= 15 && wa.stats.succeeded >= 16);
    assert.ok(freeStart - sentFree < 1000, `the unlimited task waited ${freeStart - sentFree} ms`);
    assert.ok(freeStart < sorted[29], "the unlimited task did not wait behind the limited ones");
  } finally {
    await Promise.all([wa.stop(), wb.stop()]);
    await Promise.all([a.app.close(), b.app.close(), client.close()]);
  }
});

Deno.test({
  name: "rate limit on redis: acquireTokens takes from shared buckets atomically",
  ignore: WITHOUT_REDIS,
}, async () => {
  const broker = await openBroker(REDIS);
  try {
    assert.ok(broker.acquireTokens);
    const key = `bucket-${crypto.randomUUID().slice(0, 8)}`;
    const other = `${key}-other`;
    const first = await broker.acquireTokens([
      { key, rate: 20, capacity: 1, count: 3 },
      { key: other, rate: 20, capacity: 2, count: 3 },
    ]);
    assert.deepEqual(first.map((g) => g.granted), [1, 2], "new buckets are full");
    assert.ok(first[0].retryAfterMs > 0 && first[0].retryAfterMs <= 50);
    const [empty] = await broker.acquireTokens([{ key, rate: 20, capacity: 1, count: 1 }]);
    assert.equal(empty.granted, 0);
    await new Promise((r) => setTimeout(r, empty.retryAfterMs + 5));
    const [again] = await broker.acquireTokens([{ key, rate: 20, capacity: 1, count: 1 }]);
    assert.deepEqual(again, { granted: 1, retryAfterMs: 0 }, "the next token came when due");
    const redis = await rawRedis();
    const ttl = await redis.pttl(`${redisPrefix}${RATE_LIMIT_KEY_PREFIX}${key}`);
    await redis.quit();
    assert.ok(ttl > 0 && ttl <= 1050, `an idle bucket expires (ttl ${ttl} ms)`);
  } finally {
    await broker.close();
  }
});

Deno.test("rate limit on kv: per worker; setRateLimit changes it at run time", async () => {
  const url = `kv://${kvDir}/limits.sqlite`;
  const { app } = tasksApp(url, "5/s");
  const queue = `rlkv-${crypto.randomUUID().slice(0, 8)}`;
  app.configure({ defaultQueue: queue });
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const worker = new Worker({ app, pool: "inline" });
  await worker.start();
  try {
    assert.equal(worker.rateLimit("rl.tick"), 5);
    const first = await Promise.all(
      Array.from({ length: 6 }, (_, i) => client.sendTask<number>("rl.tick", [i])),
    );
    const starts = await Promise.all(first.map((r) => r.get({ timeout: 10_000 })));
    const sorted = [...starts].sort((x, y) => x - y);
    assert.ok(sorted[5] - sorted[0] >= 900, `6 runs at 5/s span ${sorted[5] - sorted[0]} ms`);

    worker.setRateLimit("rl.tick", "1/m");
    const held = await Promise.all(
      Array.from({ length: 5 }, (_, i) => client.sendTask<number>("rl.tick", [i])),
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(worker.active, 0, "tasks waiting for a token are not running");
    const lifted = Date.now();
    worker.setRateLimit("rl.tick", null);
    assert.equal(worker.rateLimit("rl.tick"), null);
    const after = await Promise.all(held.map((r) => r.get({ timeout: 10_000 })));
    assert.ok(after.filter((t) => t >= lifted).length >= 4, "held tasks ran once the limit went");
    assert.throws(() => worker.setRateLimit("rl.tick", "fast"), TypeError);
    assert.throws(() => worker.setRateLimit("no.such", 1), /does not run it/);
  } finally {
    await worker.stop();
    await Promise.all([app.close(), client.close()]);
  }
});

Deno.test("rate limit on kv: held tasks are requeued unacknowledged at shutdown", async () => {
  const url = `kv://${kvDir}/requeue.sqlite`;
  const { app } = tasksApp(url, "1/h");
  const queue = `rlrq-${crypto.randomUUID().slice(0, 8)}`;
  app.configure({ defaultQueue: queue });
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const worker = new Worker({ app, pool: "inline" });
  await worker.start();
  try {
    const rs = await Promise.all([0, 1, 2].map((i) => client.sendTask<number>("rl.tick", [i])));
    await rs[0].get({ timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await (await client.broker()).queueDepth(queue), 0, "two are held by the worker");
  } finally {
    await worker.stop();
  }
  assert.equal(await (await client.broker()).queueDepth(queue), 2, "held tasks went back");
  await Promise.all([app.close(), client.close()]);
});

Deno.test("rate limit on kv: a task waiting for a token is REVOKED at once when revoked", async () => {
  const url = `kv://${kvDir}/revoke.sqlite`;
  const { app } = tasksApp(url, "1/h");
  const queue = `rlrv-${crypto.randomUUID().slice(0, 8)}`;
  app.configure({ defaultQueue: queue });
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const worker = new Worker({ app, pool: "inline" });
  await worker.start();
  try {
    const [first, waiting] = await Promise.all(
      [0, 1].map((i) => client.sendTask<number>("rl.tick", [i])),
    );
    await first.get({ timeout: 10_000 });
    while (worker.stats.received < 2) await new Promise((r) => setTimeout(r, 20));
    await waiting.revoke();
    const err = await waiting.get({ timeout: 5000 }).then(() => null, (e) => e);
    assert.equal(err?.excType, "TaskRevokedError");
    assert.equal(await waiting.state(), "REVOKED");
  } finally {
    await worker.stop();
  }
  assert.equal(await client.queueDepth(queue), 0, "the revoked task is acknowledged, not requeued");
  await Promise.all([app.close(), client.close()]);
});

Deno.test("rate limit: a malformed rateLimit is a TypeError naming the option", () => {
  const app = new Celery({ broker: "kv://:memory:" });
  assert.throws(
    () => app.task("rl.bad", { rateLimit: "10/x" }, () => 1),
    (e: unknown) => e instanceof TypeError && /rateLimit of task "rl\.bad"/.test(e.message),
  );
});

Deno.test({ name: "rate limit: clean up", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(redisPrefix);
  await Deno.remove(kvDir, { recursive: true });
});
