import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { Celery } from "../mod.ts";
import { openRedisBackend, type RedisBackend } from "../src/backend/redis.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const prefix = uniquePrefix("early");
const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

/** How many connections are subscribed to the result channel of `id`. */
async function subscribed(r: Redis, id: string): Promise<number> {
  const [, n] = await r.pubsub("NUMSUB", `${prefix}celery-task-meta-${id}`) as [string, number];
  return n;
}

/** Wait (5 s at most) until `id`'s result channel has `n` subscribers. */
async function until(r: Redis, id: string, n: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await subscribed(r, id) === n) return;
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error(
    `the channel of ${id} still has ${await subscribed(r, id)} subscriber(s), not ${n}`,
  );
}

/** Store (and publish) a SUCCESS of `taskId` with `result`. */
function succeed(backend: RedisBackend, taskId: string, result: unknown): Promise<void> {
  return backend.store([{
    taskId,
    status: "SUCCESS",
    meta: encodeResultMeta({ taskId, status: "SUCCESS", result, dateDone: new Date() }),
  }]);
}

Deno.test({
  name: "redis early subscribe: once a caller has waited, a task expected before its send is " +
    "subscribed to at once, and its result stored before the wait comes is the wait's",
  ignore: WITHOUT_REDIS,
}, async () => {
  const backend = await openRedisBackend(url);
  const r = await rawRedis();
  try {
    const first = crypto.randomUUID();
    const waiting = backend.waitFor(first, AbortSignal.timeout(10_000));
    await until(r, first, 1);
    await succeed(backend, first, 1);
    assert.equal((await waiting).result, 1);
    const next = crypto.randomUUID();
    backend.expect(next);
    await until(r, next, 1);
    // Stored (and published) before anything waits: heard on the early subscription and kept,
    // its read behind the SUBSCRIBE having found nothing.
    await succeed(backend, next, 2);
    await new Promise((res) => setTimeout(res, 20));
    assert.equal((await backend.waitFor(next, AbortSignal.timeout(10_000))).result, 2);
  } finally {
    await backend.close();
    await r.quit();
  }
});

Deno.test({
  name: "redis early subscribe: a task nobody waits for leaves its channel, and the sends after " +
    "it are not subscribed to until a caller waits again",
  ignore: WITHOUT_REDIS,
}, async () => {
  const backend = await openRedisBackend(url);
  const r = await rawRedis();
  try {
    const first = crypto.randomUUID();
    await succeed(backend, first, 1);
    assert.equal((await backend.waitFor(first, AbortSignal.timeout(10_000))).result, 1);
    const unwaited = crypto.randomUUID();
    backend.expect(unwaited);
    await until(r, unwaited, 1);
    await until(r, unwaited, 0);
    const after = crypto.randomUUID();
    backend.expect(after);
    // A wait's SUBSCRIBE goes on the same connection, behind any the expect() would have written.
    const other = crypto.randomUUID();
    const waiting = backend.waitFor(other, AbortSignal.timeout(10_000));
    await until(r, other, 1);
    assert.equal(await subscribed(r, after), 0, "not subscribed to: the last one went unused");
    await succeed(backend, other, 3);
    assert.equal((await waiting).result, 3);
  } finally {
    await backend.close();
    await r.quit();
  }
});

Deno.test({
  name: "redis early subscribe: sendTask() subscribes to the result with the send once the app " +
    "has waited, not for a task whose result is ignored; get() then reads it",
  ignore: WITHOUT_REDIS,
}, async () => {
  const queue = `${prefix}q`;
  const app = new Celery({ broker: REDIS_URL, backend: url, defaultQueue: queue });
  const backend = await openRedisBackend(url);
  const r = await rawRedis();
  try {
    const first = await app.sendTask("tests.noop");
    await succeed(backend, first.id, 1);
    assert.equal(await first.get({ timeout: 10_000 }), 1);
    const ignored = await app.sendTask("tests.noop", [], { ignoreResult: true });
    const next = await app.sendTask("tests.noop");
    await until(r, next.id, 1);
    assert.equal(await subscribed(r, ignored.id), 0, "an ignored result is not subscribed to");
    await succeed(backend, next.id, 2);
    assert.equal(await next.get({ timeout: 10_000 }), 2);
  } finally {
    await app.close();
    await backend.close();
    await r.quit();
    await deleteKeys(prefix);
  }
});
