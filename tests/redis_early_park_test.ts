import assert from "node:assert/strict";
import type { Delivery } from "../src/broker/port.ts";
import { openRedisBroker, type RedisBroker } from "../src/broker/redis.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

// A lone early hand-out acknowledged before any take script ran is acknowledged with an LREM of
// its claim (redis_take.ts): never in `unacked`. Rejected afterwards (a refused content type or
// an undecodable body is acknowledged as the task starts, then parked), it is parked all the
// same, re-encoded, as a delivery acknowledged the usual way is.

const texts = (ds: Delivery[]) => ds.map((d) => JSON.parse(new TextDecoder().decode(d.body)));

/** A broker of its own prefix, a queue and a raw connection. */
async function waitingBroker(name: string) {
  const p = uniquePrefix(name);
  const broker = await openRedisBroker(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(p)}`);
  return { p, q: uniqueQueue(name), broker, r: await rawRedis() };
}

/** Take while the queue is empty, publish `text`: the wait claims it and hands it out early. */
async function acknowledgedAtIntake(broker: RedisBroker, q: string, p: string, text: string) {
  const r = await rawRedis();
  try {
    const taking = broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    await new Promise((res) => setTimeout(res, 20));
    await broker.publish(message(text), { routingKey: q });
    const got = await taking;
    assert.deepEqual(texts(got), [text]);
    await broker.ack(got);
    assert.deepEqual(await r.keys(`${p}celeriac.take.*`), [], "acknowledged with no take script");
    return got;
  } finally {
    await r.quit();
  }
}

Deno.test({
  name: "redis early hand-out acknowledged at intake, then rejected: parked, re-encoded, " +
    "with its reason, and reported parked",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-park");
  try {
    const got = await acknowledgedAtIntake(broker, q, p, "refused");
    const d = got[0];
    const rejection = { delivery: d, reason: "refused content type", taskId: "t1", taskName: "x" };
    const written = await broker.reject([rejection]);
    assert.deepEqual(written.map((w) => w.delivery), [d], "reported parked");
    const parked = await broker.listParked();
    assert.deepEqual(parked.map((m) => [m.reason, m.queue, m.taskId]), [
      ["refused content type", q, "t1"],
    ]);
    const [entry] = await r.lrange(`${p}celeriac.parked`, 0, -1);
    const env = JSON.parse(JSON.parse(entry).message);
    assert.equal(JSON.parse(atob(env.body)), "refused", "the message itself");
    assert.equal(env.properties.delivery_tag, d.deliveryTag);
    assert.equal(await r.hlen(`${p}unacked`), 0);
    // Asked again to settle it: acknowledged already, nothing of it left in Redis to settle.
    await broker.ack(got);
    await broker.requeue(got);
    assert.equal(await r.llen(`${p}${q}`), 0, "not requeued");
    assert.equal(await broker.countParked(), 1, "parked once");
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis early hand-out acknowledged at intake, then rejected: the park leaves alone " +
    "another consumer's unacked entry under the same tag (the message routed to two queues)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-park-twin");
  try {
    const got = await acknowledgedAtIntake(broker, q, p, "twice");
    const tag = got[0].deliveryTag;
    const twin = `["another consumer's copy", "", "other"]`;
    await r.hset(`${p}unacked`, tag, twin);
    await r.zadd(`${p}unacked_index`, Date.now() / 1000, tag);
    const written = await broker.reject([{ delivery: got[0], reason: "undecodable body" }]);
    assert.equal(written.length, 1);
    const [entry] = await r.lrange(`${p}celeriac.parked`, 0, -1);
    const env = JSON.parse(JSON.parse(entry).message);
    assert.equal(JSON.parse(atob(env.body)), "twice", "re-encoded, not the other's entry");
    assert.equal(await r.hget(`${p}unacked`, tag), twin, "the other consumer's entry stays");
    assert.equal(await r.zcard(`${p}unacked_index`), 1);
    await broker.ack(got);
    await broker.extend(got);
    assert.equal(await r.hget(`${p}unacked`, tag), twin, "nor does an acknowledgement remove it");
  } finally {
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});
