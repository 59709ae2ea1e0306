/**
 * The Redis result backend's subscriber across a dropped connection
 * (src/backend/redis_results.ts): through a test-owned proxy that can cut
 * its connections and refuse new ones, a result published while the
 * subscriber was away is read from its key once it is back, results
 * published afterwards reach the subscriptions made again, and a wait that
 * cannot subscribe fails as a `BrokerConnectionError`.
 */

import assert from "node:assert/strict";
import { openRedisBackend, type RedisBackend } from "../src/backend/redis.ts";
import { ioredisResultChannels, respResultChannels } from "../src/backend/redis_results.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { Redis } from "ioredis";
import { loadIoredis } from "../src/broker/redis_connection.ts";
import { parseRedisUrl } from "../src/broker/redis_url.ts";
import { RespScripts } from "../src/broker/resp_scripts.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `redis backend reconnect: ${name}`, ignore: WITHOUT_REDIS }, fn);

function success(taskId: string, result: unknown) {
  return {
    taskId,
    status: "SUCCESS" as const,
    meta: encodeResultMeta({ taskId, status: "SUCCESS", result, dateDone: new Date() }),
  };
}

/** Poll `done` every 20 ms, `tries` times (default 100); then fail with `what`. */
async function until(done: () => Promise<boolean> | boolean, what: string, tries = 100) {
  for (let i = 0; i < tries; i++) {
    if (await done()) return;
    await new Promise((res) => setTimeout(res, 20));
  }
  assert.fail(what);
}

/** A backend behind its own proxy, one straight to Redis, and a raw client. */
async function setUp(label: string) {
  const prefix = uniquePrefix(label);
  const query = `?global_keyprefix=${encodeURIComponent(prefix)}`;
  const { proxy, url: throughProxy } = LossyProxy.before(`${REDIS_URL}${query}`);
  const viaProxy = await openRedisBackend(throughProxy);
  const direct = await openRedisBackend(`${REDIS_URL}${query}`);
  const r = await rawRedis();
  /** Wait until `n` connections subscribe to the channel of `backend`'s key of `id`. */
  const subscribed = async (backend: RedisBackend, id: string, n = 1) => {
    for (let i = 0; i < 200; i++) {
      const [, count] = await r.pubsub("NUMSUB", backend.key(id)) as [string, number];
      if (count === n) return;
      await new Promise((res) => setTimeout(res, 10));
    }
    const [, count] = await r.pubsub("NUMSUB", backend.key(id)) as [string, number];
    assert.fail(`${count} connection(s), not ${n}, subscribe to ${backend.key(id)}`);
  };
  const tearDown = async () => {
    await viaProxy.close();
    await direct.close();
    proxy.close();
    await r.quit();
    await deleteKeys(prefix);
  };
  return { proxy, viaProxy, direct, subscribed, tearDown };
}

test("a result published while the subscriber was away is read; later ones are heard", async () => {
  const { proxy, viaProxy, direct, subscribed, tearDown } = await setUp("backend-cut");
  try {
    const [a, b] = [crypto.randomUUID(), crypto.randomUUID()];
    const waitA = viaProxy.waitFor(a, AbortSignal.timeout(10_000));
    const waitB = viaProxy.waitFor(b, AbortSignal.timeout(10_000));
    // Rejected by tearDown when an assertion fails first: that failure is the one reported.
    for (const w of [waitA, waitB]) w.catch(() => {});
    await subscribed(viaProxy, a);
    await subscribed(viaProxy, b);
    proxy.refuse(true);
    proxy.cut();
    // Published while no connection of viaProxy can hear it.
    await direct.store([success(a, "while away")]);
    await new Promise((res) => setTimeout(res, 300));
    proxy.refuse(false);
    assert.equal((await waitA).result, "while away");
    // b's key holds nothing: only the subscription made again can deliver it.
    await subscribed(viaProxy, b);
    await direct.store([success(b, "after")]);
    assert.equal((await waitB).result, "after");
  } finally {
    await tearDown();
  }
});

test("a wait whose SUBSCRIBE reply a drop lost survives it and gets its result", async () => {
  const { proxy, viaProxy, direct, subscribed, tearDown } = await setUp("backend-lost-reply");
  try {
    // The subscriber connection is up: a first wait subscribed through it.
    const first = crypto.randomUUID();
    const waitFirst = viaProxy.waitFor(first, AbortSignal.timeout(10_000));
    await subscribed(viaProxy, first);
    await direct.store([success(first, 1)]);
    await waitFirst;
    proxy.holdReplies();
    const a = crypto.randomUUID();
    const waitA = viaProxy.waitFor(a, AbortSignal.timeout(10_000));
    waitA.catch(() => {});
    // Its SUBSCRIBE ran on the server; the reply is lost with the connection.
    await subscribed(viaProxy, a);
    proxy.cut();
    await direct.store([success(a, "after the drop")]);
    assert.equal((await waitA).result, "after the drop");
  } finally {
    await tearDown();
  }
});

test("a wait that cannot subscribe fails as a BrokerConnectionError", async () => {
  const { proxy, viaProxy, tearDown } = await setUp("backend-refused");
  try {
    proxy.refuse(true);
    proxy.cut();
    await assert.rejects(
      viaProxy.waitFor(crypto.randomUUID(), AbortSignal.timeout(10_000)),
      (err: Error) => {
        assert.ok(err instanceof BrokerConnectionError, `${err.name}: ${err.message}`);
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${proxy.port}`));
        return true;
      },
    );
  } finally {
    await tearDown();
  }
});

test("a channel whose subscription failed is not subscribed to once Redis is back", async () => {
  const { proxy, viaProxy, direct, subscribed, tearDown } = await setUp("backend-stale");
  try {
    const [failed, later] = [crypto.randomUUID(), crypto.randomUUID()];
    proxy.refuse(true);
    await assert.rejects(
      viaProxy.waitFor(failed, AbortSignal.timeout(10_000)),
      BrokerConnectionError,
    );
    proxy.refuse(false);
    const waitLater = viaProxy.waitFor(later, AbortSignal.timeout(10_000));
    waitLater.catch(() => {});
    await subscribed(viaProxy, later);
    await subscribed(viaProxy, failed, 0);
    await direct.store([success(later, "heard")]);
    assert.equal((await waitLater).result, "heard");
  } finally {
    await tearDown();
  }
});

test("closing the backend ends a wait at once", async () => {
  const { viaProxy, subscribed, tearDown } = await setUp("backend-close");
  try {
    const id = crypto.randomUUID();
    const outcome = viaProxy.waitFor(id).then(() => null, (err: Error) => err);
    await subscribed(viaProxy, id);
    const t0 = performance.now();
    await viaProxy.close();
    assert.equal((await outcome)?.name, "AbortError");
    assert.ok(performance.now() - t0 < 500, "closed without waiting");
    await subscribed(viaProxy, id, 0);
  } finally {
    await tearDown();
  }
});

test("an abort ends a wait whose subscription waits for a reconnect", async () => {
  const { proxy, viaProxy, subscribed, tearDown } = await setUp("backend-abort");
  try {
    // The subscriber connects, then loses its connection; its next one gets no answer.
    const first = crypto.randomUUID();
    const settled = viaProxy.waitFor(first, AbortSignal.timeout(10_000)).catch((e: Error) => e);
    await subscribed(viaProxy, first);
    proxy.cut();
    proxy.holdReplies();
    await new Promise((res) => setTimeout(res, 100));
    const t0 = performance.now();
    await assert.rejects(
      viaProxy.waitFor(crypto.randomUUID(), AbortSignal.timeout(200)),
      (err: Error) => err.name === "TimeoutError",
    );
    const took = performance.now() - t0;
    assert.ok(took < 1000, `the abort ended the wait after ${took} ms`);
    proxy.cut();
    await viaProxy.close();
    await settled;
  } finally {
    await tearDown();
  }
});

test("a subscriber whose connection stopped answering while idle is dropped and reconnected", async () => {
  const { proxy, url } = LossyProxy.before(REDIS_URL);
  const scripts = new RespScripts(parseRedisUrl(url), url, { replyTimeoutMs: 200 });
  let ready = 0;
  const channels = respResultChannels(scripts, url, {
    message: () => {},
    ready: () => ready++,
  }, 50);
  try {
    await channels.subscribe(`celeriac-test-idle-${crypto.randomUUID()}`);
    assert.equal(proxy.accepted, 1);
    // The server's side goes silent: nothing waits for a reply, only the PINGs can tell.
    proxy.holdReplies();
    for (let i = 0; i < 100 && proxy.accepted < 2; i++) {
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.ok(proxy.accepted >= 2, "the silent connection was dropped and another opened");
    proxy.cut();
    for (let i = 0; i < 100 && ready < 2; i++) await new Promise((res) => setTimeout(res, 20));
    assert.equal(ready, 2, "connected again");
  } finally {
    await channels.close();
    await scripts.close();
    proxy.close();
  }
});

/**
 * Celeriac's own result subscriber behind a proxy and a raw client; `readies()` counts the times
 * the subscriber connected, `subscribers(channel)` the connections subscribed to `channel`.
 */
async function respSubscriber() {
  const { proxy, url } = LossyProxy.before(REDIS_URL);
  const scripts = new RespScripts(parseRedisUrl(url), url);
  let ready = 0;
  const channels = respResultChannels(scripts, url, { message: () => {}, ready: () => ready++ });
  const r = await rawRedis();
  const subscribers = async (channel: string) =>
    (await r.pubsub("NUMSUB", channel) as [string, number])[1];
  const close = async () => {
    await channels.close();
    await scripts.close();
    proxy.close();
    await r.quit();
  };
  return { proxy, channels, readies: () => ready, subscribers, close };
}

test("a channel left while the subscriber reconnects is not subscribed to once it is back", async () => {
  const { proxy, channels, readies, subscribers, close } = await respSubscriber();
  const channel = `celeriac-test-left-${crypto.randomUUID()}`;
  try {
    await channels.subscribe(channel);
    // Cut while the server's replies are held back: the reconnect's SUBSCRIBE reaches Redis,
    // its reply does not, and the connection stays connecting.
    proxy.pauseReplies();
    proxy.cut();
    await until(
      async () => proxy.accepted === 2 && await subscribers(channel) === 1,
      "subscribed again by the reconnect",
    );
    // The backend leaves a settled result's channel on a timer (LEAVE_MS): it may fire now.
    const left = channels.unsubscribe(channel);
    proxy.resumeReplies();
    await left;
    await until(() => readies() === 2, "connected again");
    await until(
      async () => await subscribers(channel) === 0,
      "the channel left is not subscribed to",
    );
  } finally {
    await close();
  }
});

test("a channel asked for and left while the subscriber waits to reconnect is not subscribed to once it is back", async () => {
  const { proxy, channels, readies, subscribers, close } = await respSubscriber();
  const [kept, left] = [1, 2].map(() => `celeriac-test-left-${crypto.randomUUID()}`);
  try {
    await channels.subscribe(kept);
    proxy.refuse(true);
    proxy.cut();
    await until(async () => await subscribers(kept) === 0, "dropped");
    // Asked for while the connection waits to reconnect (its SUBSCRIBE waits for the next
    // attempt), left before that attempt (an aborted wait): the attempt's greeting subscribes
    // to the channels wanted then, and the SUBSCRIBE asked for must not follow it.
    const asked = channels.subscribe(left);
    // Rejected by the teardown's close when a step fails first: that failure is the one reported.
    asked.catch(() => {});
    await channels.unsubscribe(left);
    proxy.refuse(false);
    await asked;
    await until(() => readies() === 2, "connected again");
    await until(async () => await subscribers(kept) === 1, "the kept channel subscribed again");
    assert.equal(await subscribers(left), 0, "the channel left is not subscribed to");
  } finally {
    await close();
  }
});

test("a channel asked for and left while a reconnect attempt that then fails is under way is not subscribed to", async () => {
  const { proxy, channels, readies, subscribers, close } = await respSubscriber();
  const [kept, left] = [1, 2].map(() => `celeriac-test-left-${crypto.randomUUID()}`);
  try {
    await channels.subscribe(kept);
    // The reconnect's first attempt (connection 1) gets no reply to its greeting: it stays
    // connecting until the cut below fails it; the next attempt succeeds.
    proxy.cut();
    proxy.holdReplies(1);
    await until(() => proxy.accepted === 2, "a reconnect attempt under way");
    // A wait subscribes and is aborted while that attempt is under way; then the attempt fails.
    const asked = channels.subscribe(left);
    const leaving = channels.unsubscribe(left);
    proxy.cut();
    // Neither fails: the channel is left, and the next attempt subscribes only to the one kept.
    // (The UNSUBSCRIBE rejected once, failing the test before it awaited the SUBSCRIBE, which
    // its teardown's close then rejected with no handler: an uncaught error for the whole file.)
    const [a, l] = await Promise.allSettled([asked, leaving]);
    assert.equal(l.status, "fulfilled", `unsubscribe: ${l.status === "rejected" && l.reason}`);
    assert.equal(a.status, "fulfilled", `subscribe: ${a.status === "rejected" && a.reason}`);
    await until(() => readies() === 2, "connected again");
    await until(async () => await subscribers(kept) === 1, "the kept channel subscribed again");
    assert.equal(await subscribers(left), 0, "the channel left is not subscribed to");
  } finally {
    await close();
  }
});

test("a channel left while the ioredis subscriber (Sentinel, Cluster) cannot reconnect is not subscribed to once it is back", async () => {
  const { proxy, url } = LossyProxy.before(REDIS_URL);
  // An ioredis connection as Sentinel and Cluster URLs open (a single server has Celeriac's own).
  await loadIoredis();
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 3,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 4), 500),
  });
  // The proxy's cuts are the test: without a listener ioredis prints each as "Unhandled error event".
  client.on("error", () => {});
  let ready = 0;
  const channels = ioredisResultChannels(client, url, { message: () => {}, ready: () => ready++ });
  const r = await rawRedis();
  const channel = `celeriac-test-left-io-${crypto.randomUUID()}`;
  const subscribers = async () => (await r.pubsub("NUMSUB", channel) as [string, number])[1];
  try {
    await client.connect();
    await channels.subscribe(channel);
    await until(() => ready === 1, "connected", 150);
    proxy.refuse(true);
    proxy.cut();
    await new Promise((res) => setTimeout(res, 300));
    // The waiter gives up while Redis is unreachable: ioredis queues the UNSUBSCRIBE and, after
    // its retries per request, rejects it.
    const gaveUp = await Promise.race([
      channels.unsubscribe(channel).then(() => "unsubscribed", () => "gave up"),
      new Promise((res) => setTimeout(() => res("still waiting"), 5000)),
    ]);
    assert.equal(gaveUp, "gave up");
    proxy.refuse(false);
    await until(() => ready === 2, "connected again", 150);
    await until(
      async () => await subscribers() === 0,
      "the channel left is not subscribed to",
      150,
    );
  } finally {
    await channels.close();
    client.disconnect();
    proxy.close();
    await r.quit();
  }
});
