import assert from "node:assert/strict";
import type { Delivery } from "../src/broker/port.ts";
import { openRedisBroker, type RedisBroker } from "../src/broker/redis.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { RedisMonitor } from "../tools/redis_monitor.ts";

const texts = (ds: Delivery[]) => ds.map((d) => JSON.parse(new TextDecoder().decode(d.body)));

/** A broker of its own prefix, a queue and a raw connection. */
async function waitingBroker(name: string) {
  const p = uniquePrefix(name);
  const broker = await openRedisBroker(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(p)}`);
  return { p, q: uniqueQueue(name), broker, r: await rawRedis() };
}

/** Take while the queue is empty, then publish `texts` at once: the wait claims the first. */
async function takeWhileWaiting(broker: RedisBroker, q: string, sent: string[]) {
  const taking = broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
  await new Promise((r) => setTimeout(r, 20));
  await broker.publishMany(sent.map((t) => ({ message: message(t), target: { routingKey: q } })));
  return await taking;
}

Deno.test({
  name: "redis early hand-out: a claimed message is handed out before its take script " +
    "runs; acknowledging it removes it from its claim list, nothing left anywhere",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-ack");
  try {
    const got = await takeWhileWaiting(broker, q, ["one"]);
    assert.deepEqual(texts(got), ["one"]);
    assert.equal(await r.hlen(`${p}unacked`), 0, "not recorded yet: its script waits");
    await broker.ack(got);
    assert.equal(await r.hlen(`${p}unacked`), 0);
    assert.equal(await r.zcard(`${p}unacked_index`), 0);
    assert.equal(await r.llen(`${p}${q}`), 0);
    const claims = await r.keys(`${p}celeriac.claim.*`);
    for (const c of claims) assert.equal(await r.llen(c), 0, `${c} is empty`);
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

/**
 * Acknowledge `got` (an early hand-out) in the turn the next take sends its take script, so
 * that the acknowledgement goes right behind that script; that take ends empty.
 */
async function ackBehindNextTake(broker: RedisBroker, q: string, got: Delivery[]) {
  const next = broker.take([q], { max: 10, signal: AbortSignal.timeout(300) });
  await broker.ack(got);
  assert.deepEqual(await next, []);
}

Deno.test({
  name: "redis early hand-out: a message the take script gives a new tag is acknowledged " +
    "under it, and the entry holding its old tag is left alone",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-retag");
  try {
    const got = await takeWhileWaiting(broker, q, ["one"]);
    const old = got[0].deliveryTag;
    await r.hset(`${p}unacked`, old, "another consumer's entry");
    await r.zadd(`${p}unacked_index`, Date.now() / 1000, old);
    await ackBehindNextTake(broker, q, got);
    assert.notEqual(got[0].deliveryTag, old, "retagged by the take script");
    assert.equal(await r.hget(`${p}unacked`, old), "another consumer's entry");
    assert.equal(await r.hlen(`${p}unacked`), 1);
    assert.equal(await r.zcard(`${p}unacked_index`), 1);
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis early hand-out: the next take returns what the take script took beside " +
    "the claimed message, and parking and requeueing wait for the record",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-rest");
  try {
    const got = await takeWhileWaiting(broker, q, ["a", "b", "c"]);
    assert.deepEqual(texts(got), ["a"]);
    const rest = await broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    assert.deepEqual(texts(rest), ["b", "c"]);
    assert.equal(await r.hlen(`${p}unacked`), 3);
    await broker.reject([{ delivery: got[0], reason: "test" }]);
    await broker.requeue([rest[0]]);
    await broker.ack([rest[1]]);
    assert.equal(await r.hlen(`${p}unacked`), 0);
    assert.equal(await r.llen(`${p}celeriac.parked`), 1);
    assert.equal(await r.llen(`${p}${q}`), 1, "b is back in its queue");
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis early hand-out: closing puts back what the take script took beside the " +
    "claimed message, not handed out yet",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-close");
  try {
    const got = await takeWhileWaiting(broker, q, ["a", "b", "c"]);
    assert.deepEqual(texts(got), ["a"]);
    await broker.close();
    assert.equal(await r.llen(`${p}${q}`), 2, "b and c are back in their queue");
    assert.equal(await r.hlen(`${p}unacked`), 1, "a stays unacknowledged, as any delivery");
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis early hand-out: its take script follows soon even when this worker neither " +
    "takes nor settles again (a held or long task): its claim is not swept to another worker",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-alone");
  const other = await openRedisBroker(
    `${REDIS_URL}?global_keyprefix=${encodeURIComponent(p)}`,
    { restoreInterval: 0.5 },
  );
  try {
    const got = await takeWhileWaiting(broker, q, ["one"]);
    assert.deepEqual(texts(got), ["one"]);
    // The task is held (ETA, rate limit) or runs long: no take, no settling for a while.
    await new Promise((res) => setTimeout(res, 1000));
    assert.equal(await r.hlen(`${p}unacked`), 1, "recorded without another take");
    // Its claim ages past the lease meanwhile (no wait renews it): another worker's sweep
    // must find nothing of it to put back.
    for (const m of await r.zrange(`${p}celeriac.claims`, "0", "-1")) {
      await r.zadd(`${p}celeriac.claims`, 0, m);
    }
    const stolen = await other.take([q], { max: 10, signal: AbortSignal.timeout(1500) });
    assert.deepEqual(texts(stolen), [], "the running message is not another worker's too");
    await broker.ack(got);
    assert.equal(await r.hlen(`${p}unacked`), 0);
  } finally {
    await other.close();
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis early hand-out: an early acknowledgement of a retagged message leaves an " +
    "identical envelope another consumer holds under the old tag (a topic exchange's copy)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-twin");
  try {
    const got = await takeWhileWaiting(broker, q, ["one"]);
    const old = got[0].deliveryTag;
    const [claim] = await r.keys(`${p}celeriac.claim.*`);
    const [raw] = await r.lrange(claim, 0, -1);
    // The same envelope, bound to another queue too, taken there under its own tag first.
    const twin = `[${raw}, "", "other"]`;
    await r.hset(`${p}unacked`, old, twin);
    await r.zadd(`${p}unacked_index`, Date.now() / 1000 - 5, old);
    await ackBehindNextTake(broker, q, got);
    assert.notEqual(got[0].deliveryTag, old, "retagged by the take script");
    assert.equal(await r.hget(`${p}unacked`, old), twin, "the other consumer's entry stays");
    assert.equal(await r.hget(`${p}unacked`, got[0].deliveryTag), null, "ours is acknowledged");
    assert.equal(await r.hlen(`${p}unacked`), 1);
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

/**
 * The claimed message's take script, sent by `record` before any take follows, records that
 * message alone: the rest stays in its queue for any worker, not recorded and held out of sight
 * (not running, not in `inspect reserved`, no lease renewal; restored after the visibility
 * timeout, run elsewhere, then handed out here again).
 */
function recordsTheClaimOnly(
  by: string,
  record: (broker: RedisBroker, got: Delivery[]) => Promise<void>,
  recorded: number,
) {
  Deno.test({
    name: `redis early hand-out: a take script ${by} records the claimed message only, ` +
      "leaving the rest queued rather than recorded and held out of sight",
    ignore: WITHOUT_REDIS,
  }, async () => {
    const { p, q, broker, r } = await waitingBroker("early-only");
    try {
      const got = await takeWhileWaiting(broker, q, ["a", "b", "c"]);
      assert.deepEqual(texts(got), ["a"]);
      await record(broker, got);
      assert.equal(await r.hlen(`${p}unacked`), recorded, "nothing but a recorded");
      assert.equal(await r.llen(`${p}${q}`), 2, "b and c stay in their queue for any worker");
      if (recorded) await broker.ack(got);
      // The record read the claim list alone, so b and c were never read: the next take takes
      // both at once (a wait first would claim them one per wait: a burst behind an early
      // hand-out of fast tasks ran one message per BLMOVE and take script, a 1,000-member chord
      // 2.7x slower).
      const rest = await broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
      assert.deepEqual(texts(rest), ["b", "c"]);
      await broker.ack(rest);
      assert.equal(await r.hlen(`${p}unacked`), 0);
    } finally {
      await broker.close();
      await deleteKeys(p);
      await r.quit();
    }
  });
}

// No take follows (the worker's slots are full, or it holds ETA tasks): its timer sends it.
recordsTheClaimOnly("its timer sends", () => new Promise((res) => setTimeout(res, 600)), 1);
// The task finished at once and the consume loop sleeps (ETA limit or backlog reached).
recordsTheClaimOnly("an acknowledgement sends", (broker, got) => broker.ack(got), 0);

Deno.test({
  name: "redis early hand-out: after the record of a lone hand-out, the next take's wait " +
    "claims at once a message waiting in another of its queues",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-other");
  const q2 = uniqueQueue("early-other-2");
  try {
    const taking = broker.take([q, q2], { max: 10, signal: AbortSignal.timeout(5000) });
    await new Promise((res) => setTimeout(res, 20));
    await broker.publishMany([{ message: message("a"), target: { routingKey: q } }]);
    const got = await taking;
    assert.deepEqual(texts(got), ["a"]);
    // The acknowledgement sends the take script of a's claim list alone: the next take waits
    // first, on every list of both queues.
    await broker.ack(got);
    // The waits left on the other lists time out (1 s): none is in flight when x is queued.
    await new Promise((res) => setTimeout(res, 1300));
    await broker.publishMany([{ message: message("x"), target: { routingKey: q2 } }]);
    const t0 = performance.now();
    const next = await broker.take([q, q2], { max: 10, signal: AbortSignal.timeout(5000) });
    const took = performance.now() - t0;
    assert.deepEqual(texts(next), ["x"]);
    assert.ok(took < 500, `x waited ${took.toFixed(0)} ms (a wait times out after 1 s)`);
    await broker.ack(next);
    assert.equal(await r.hlen(`${p}unacked`), 0);
    assert.equal(await r.llen(`${p}${q2}`), 0);
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis early hand-out: what its take script takes beside it for a take aborted " +
    "meanwhile goes back to its queue, not held unseen and handed out again after a restore",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-aborted");
  const other = await openRedisBroker(
    `${REDIS_URL}?global_keyprefix=${encodeURIComponent(p)}&visibility_timeout=1`,
    { restoreInterval: 0.5 },
  );
  try {
    const got = await takeWhileWaiting(broker, q, ["a", "b", "c"]);
    assert.deepEqual(texts(got), ["a"]);
    // The next take sends a's take script and ends before it replies, as a Redis Cluster take
    // over several queues ends the takes of the others once one returns. The worker holds
    // its max meanwhile (no take for a while): nothing renews what the script took beside a.
    const aborted = await broker.take([q], { max: 10, signal: AbortSignal.abort() });
    assert.deepEqual(texts(aborted), []);
    await broker.ack(got);
    const elsewhere: Delivery[] = [];
    const until = Date.now() + 3000;
    while (elsewhere.length < 2 && Date.now() < until) {
      elsewhere.push(...await other.take([q], { max: 10, signal: AbortSignal.timeout(3000) }));
    }
    assert.deepEqual(texts(elsewhere), ["b", "c"], "b and c are any worker's");
    const again = await broker.take([q], { max: 10, signal: AbortSignal.timeout(300) });
    assert.deepEqual(texts(again), [], "b and c, run by the other worker, are not handed out here");
    await other.ack(elsewhere);
    assert.equal(await r.hlen(`${p}unacked`), 0);
  } finally {
    await other.close();
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis early hand-out: the take that sends its take script takes no more than its own " +
    "max beside it: the rest stays queued for any worker",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-max");
  try {
    const got = await takeWhileWaiting(broker, q, ["a", "b", "c", "d", "e"]);
    assert.deepEqual(texts(got), ["a"]);
    // One slot left: the take that records a (handed out with max 10) returns one message.
    const next = await broker.take([q], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.deepEqual(texts(next), ["b"]);
    assert.equal(await r.hlen(`${p}unacked`), 2, "a and b recorded, nothing held beside");
    assert.equal(await r.llen(`${p}${q}`), 3, "c, d and e stay in their queue");
    await broker.ack([...got, ...next]);
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis early hand-out: after the record of a lone hand-out, a higher priority's " +
    "backlog is served before a lower priority's message, as kombu does",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-priority");
  try {
    const got = await takeWhileWaiting(broker, q, ["a", "b", "c"]);
    assert.deepEqual(texts(got), ["a"]);
    // Recorded alone (b and c stay queued); the next take waits first, on every list of q.
    await broker.ack(got);
    // The waits on q's other priority lists time out (1 s): none is in flight when x is queued.
    await new Promise((res) => setTimeout(res, 1300));
    await broker.publish(message("x", { properties: { delivery_mode: 2, priority: 9 } }), {
      routingKey: q,
    });
    const served: Delivery[] = [];
    while (served.length < 3) {
      const some = await broker.take([q], { max: 2, signal: AbortSignal.timeout(5000) });
      assert.ok(some.length > 0, `took ${texts(served)}, then nothing`);
      served.push(...some);
    }
    assert.deepEqual(texts(served), ["b", "c", "x"]);
    await broker.ack(served);
    assert.equal(await r.hlen(`${p}unacked`), 0);
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis early hand-out: a lone hand-out acknowledged before any take follows runs no " +
    "take script: its claim is removed, every list found empty behind it, and the next take " +
    "waits at once",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-empty");
  const monitor = await RedisMonitor.open(REDIS_URL);
  const seen: string[] = [];
  try {
    const first = await takeWhileWaiting(broker, q, ["a"]);
    await broker.ack(first);
    // This broker's commands from here on (each names a key of its prefix).
    monitor.on((args) => {
      if (args.slice(1).some((a) => a.startsWith(p))) seen.push(args[0].toUpperCase());
    });
    const second = await takeWhileWaiting(broker, q, ["b"]);
    assert.deepEqual(texts(second), ["b"]);
    await broker.ack(second);
    const third = await takeWhileWaiting(broker, q, ["c"]);
    assert.deepEqual(texts(third), ["c"]);
    await broker.ack(third);
    await new Promise((res) => setTimeout(res, 100));
    // Neither the record of the hand-out and its acknowledgement behind it (two scripts) nor a
    // take script that finds nothing before the next wait.
    const ours = seen.filter((c) => c !== "LPUSH" && c !== "SADD" && c !== "PUBLISH");
    assert.ok(!ours.includes("EVALSHA") && !ours.includes("EVAL"), ours.join(" "));
    assert.deepEqual(ours.filter((c) => c === "LREM" || c === "EXISTS"), [
      "LREM",
      "EXISTS",
      "LREM",
      "EXISTS",
    ]);
    assert.equal(await r.hlen(`${p}unacked`), 0);
    assert.equal(await r.llen(`${p}${q}`), 0);
    assert.deepEqual(await r.keys(`${p}celeriac.take.*`), [], "no take record written");
  } finally {
    await monitor.close();
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});
