import assert from "node:assert/strict";
import type { Delivery } from "../src/broker/port.ts";
import { openRedisBroker, type RedisBroker } from "../src/broker/redis.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

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
    "runs; acknowledging it sends the script and the acknowledgement together",
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
    await broker.ack(got);
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
