/**
 * The Redis transport loses nothing in an outage: settlement retries while
 * the server is down, a take whose reply was lost is handed over, every
 * delivery is settled by the tag it was recorded under, and the restore
 * lock expires in seconds.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { RedisBackend } from "../src/backend/redis.ts";
import type { Broker, Delivery } from "../src/broker/port.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { PARKED_KEY } from "../src/broker/redis_keys.ts";
import { RESTORE_LOCK_MS } from "../src/broker/redis_restore.ts";
import { TAKE_SCRIPT } from "../src/broker/redis_scripts.ts";
import { encodeEnvelope } from "../src/protocol/envelope.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `redis outage: ${name}`, ignore: WITHOUT_REDIS }, fn);

const take = (b: Broker, q: string, max = 100) =>
  b.take([q], { max, signal: AbortSignal.timeout(3000) });

function rawEnvelope(q: string, tag: string): string {
  return encodeEnvelope(message("x"), { exchange: "", routing_key: q }, tag);
}

test("unsafe, non-UTF-8 and reused delivery tags are retagged and settled exactly", async () => {
  const prefix = uniquePrefix("tags");
  const broker = await openRedisBroker(`${REDIS_URL}?global_keyprefix=${prefix}`);
  const redis = await rawRedis();
  const q = uniqueQueue("tags");
  try {
    const badUtf8 = Buffer.concat([
      Buffer.from(rawEnvelope(q, "TAGX").split("TAGX")[0]),
      Buffer.from([0xff, 0xfe, 0x41]),
      Buffer.from(rawEnvelope(q, "TAGX").split("TAGX")[1]),
    ]);
    await redis.lpush(prefix + q, badUtf8);
    await redis.lpush(prefix + q, rawEnvelope(q, "same-tag"), rawEnvelope(q, "same-tag"));
    await redis.lpush(prefix + q, rawEnvelope(q, "tab\\there"));
    const got: Delivery[] = await take(broker, q);
    assert.equal(got.length, 4);
    assert.equal(new Set(got.map((d) => d.deliveryTag)).size, 4, "every delivery has its own tag");
    assert.equal(await redis.hlen(prefix + "unacked"), 4);
    await broker.ack(got);
    assert.equal(await redis.hlen(prefix + "unacked"), 0, "nothing is left unacknowledged");
    assert.equal(await redis.zcard(prefix + "unacked_index"), 0);
  } finally {
    await broker.close();
    await redis.quit();
    await deleteKeys(prefix);
  }
});

test("a take whose reply is lost in a cut is handed over after reconnecting, not stranded", async () => {
  const prefix = uniquePrefix("lost-take");
  const { proxy, url } = LossyProxy.before(`${REDIS_URL}?global_keyprefix=${prefix}`);
  const broker = await openRedisBroker(url);
  const redis = await rawRedis();
  const q = uniqueQueue("lost");
  try {
    await broker.declareQueue(q);
    for (let i = 0; i < 5; i++) await redis.lpush(prefix + q, rawEnvelope(q, `t${i}`));
    // Loaded first: a server without it would answer EVALSHA with NOSCRIPT, a reply held too,
    // and the take would never run.
    await redis.script("LOAD", TAKE_SCRIPT);
    proxy.holdReplies();
    const taking = take(broker, q, 10).catch(() => [] as Delivery[]);
    // The take runs on the server; its reply is dropped.
    const deadline = Date.now() + 5000;
    while (await redis.llen(prefix + q) > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(await redis.hlen(prefix + "unacked"), 5, "the take ran on the server");
    proxy.cut();
    let got: Delivery[] = await taking;
    if (got.length === 0) got = await take(broker, q, 10);
    assert.deepEqual(got.map((d) => d.deliveryTag).sort(), ["t0", "t1", "t2", "t3", "t4"]);
    assert.deepEqual(
      got.map((d) => JSON.parse(new TextDecoder().decode(d.body))),
      Array(5).fill("x"),
    );
    await broker.ack(got);
    assert.equal(await redis.hlen(prefix + "unacked"), 0, "nothing stranded in unacked");
  } finally {
    await broker.close();
    proxy.close();
    await redis.quit();
    await deleteKeys(prefix);
  }
});

test("a repeated take hands over what it took, as taken, leaving out what is no longer its own", async () => {
  const prefix = uniquePrefix("replay");
  const broker = await openRedisBroker(
    `${REDIS_URL}?global_keyprefix=${prefix}&visibility_timeout=60`,
    { restoreInterval: 3600 },
  );
  const redis = await rawRedis();
  const q = uniqueQueue("replay");
  const keys = [q, "unacked_index", "unacked", PARKED_KEY, "celeriac.take.replay"].map((k) =>
    prefix + k
  );
  // The take script as a consumer runs it: the reply of the first call is the one it lost.
  const takeAs = (seq: string) =>
    redis.eval(TAKE_SCRIPT, keys.length, ...keys, "10", seq) as Promise<string[]>;
  try {
    await broker.declareQueue(q);
    for (let i = 0; i < 3; i++) await redis.lpush(prefix + q, rawEnvelope(q, `t${i}`));
    const lost = await takeAs("1");
    assert.deepEqual(lost.filter((_, i) => i % 3 === 1), ["t0", "t1", "t2"]);
    // Meanwhile t0 is acknowledged, and t1 is restored (its visibility timeout passed) and taken
    // by another consumer under the same tag, with the envelope the restore wrote.
    await redis.zrem(prefix + "unacked_index", "t0");
    await redis.hdel(prefix + "unacked", "t0");
    await redis.zadd(prefix + "unacked_index", Date.now() / 1000 - 1000, "t1");
    assert.equal(await broker.restoreVisible(), 1);
    const [other] = await take(broker, q, 1);
    assert.equal(other.deliveryTag, "t1");
    const replay = await takeAs("1");
    assert.deepEqual(replay, lost.slice(6), "only t2, exactly as the lost reply held it");
    assert.equal(await redis.llen(prefix + PARKED_KEY), 0);
    assert.equal(await redis.hexists(prefix + "unacked", "t1"), 1, "t1 stays the other's");
  } finally {
    await broker.close();
    await redis.quit();
    await deleteKeys(prefix);
  }
});

test("a take that finds every list empty writes nothing: the take record stays the last take that took something", async () => {
  const prefix = uniquePrefix("empty-take");
  const redis = await rawRedis();
  const q = uniqueQueue("empty-take");
  const record = prefix + "celeriac.take.empty";
  const keys = [q, `${q}\x06\x163`, "unacked_index", "unacked", PARKED_KEY, "celeriac.take.empty"]
    .map((k) => prefix + k);
  const takeAs = (seq: string) =>
    redis.eval(TAKE_SCRIPT, keys.length, ...keys, "10", seq) as Promise<string[]>;
  try {
    assert.deepEqual(await takeAs("1"), []);
    assert.equal(await redis.exists(record), 0, "an idle consumer's takes write no record");
    for (let i = 0; i < 2; i++) await redis.lpush(prefix + q, rawEnvelope(q, `e${i}`));
    const taken = await takeAs("2");
    assert.deepEqual(taken.filter((_, i) => i % 3 === 1), ["e0", "e1"]);
    const before = await redis.hgetall(record);
    assert.ok(await redis.ttl(record) > 0, "a take that took something sets the record's expiry");
    // Without an expiry now: an EXPIRE of the empty take would show, however soon it came.
    assert.equal(await redis.persist(record), 1);
    assert.deepEqual(await takeAs("3"), []);
    assert.deepEqual(await redis.hgetall(record), before, "the empty take left the record");
    assert.equal(await redis.ttl(record), -1, "the empty take left the record's expiry");
    assert.deepEqual(await takeAs("2"), taken, "take 2 repeated still hands over what it took");
    assert.equal(await redis.hlen(prefix + "unacked"), 2);
  } finally {
    await redis.quit();
    await deleteKeys(prefix);
  }
});

test("the restore lock lives seconds and is renewed while a sweep runs", async () => {
  const prefix = uniquePrefix("mutex");
  const broker = await openRedisBroker(
    `${REDIS_URL}?global_keyprefix=${prefix}&visibility_timeout=1`,
    { restoreInterval: 3600 },
  );
  const redis = await rawRedis();
  try {
    const old = Date.now() / 1000 - 100;
    const tx = redis.multi();
    for (let i = 0; i < 20_000; i++) {
      tx.zadd(prefix + "unacked_index", old, `gone-${i}`);
    }
    await tx.exec();
    const sweep = broker.restoreVisible();
    let ttl = -2;
    for (let i = 0; i < 200 && ttl < 0; i++) {
      ttl = await redis.pttl(prefix + "unacked_mutex");
    }
    await sweep;
    assert.ok(ttl > 0 && ttl <= RESTORE_LOCK_MS, `mutex TTL ${ttl} ms`);
    assert.equal(await redis.exists(prefix + "unacked_mutex"), 0, "released after the sweep");
  } finally {
    await broker.close();
    await redis.quit();
    await deleteKeys(prefix);
  }
});

test("acks, parks and result stores wait out a 3 s outage instead of failing", async () => {
  const server = await PrivateRedis.start();
  const broker = await openRedisBroker(server.url);
  const backend = new RedisBackend(server.url);
  const redis = await rawRedis(server.url);
  redis.on("error", () => {});
  const q = uniqueQueue("outage");
  try {
    for (let i = 0; i < 3; i++) await broker.publish(message(`m${i}`), { routingKey: q });
    const got: Delivery[] = await take(broker, q);
    assert.equal(got.length, 3);
    await server.down();
    const t0 = Date.now();
    const settled = Promise.all([
      broker.ack([got[0]]),
      broker.reject([{ delivery: got[1], reason: "test" }]),
      backend.store([{
        taskId: "outage-1",
        status: "SUCCESS",
        meta: encodeResultMeta({ taskId: "outage-1", status: "SUCCESS", result: 1 }),
      }]),
    ]);
    await new Promise((r) => setTimeout(r, 3000));
    await server.up();
    await settled;
    assert.ok(Date.now() - t0 >= 3000);
    assert.deepEqual(await redis.hkeys("unacked"), [got[2].deliveryTag]);
    assert.equal(await redis.llen("celeriac.parked"), 1);
    assert.match(String(await redis.get("celery-task-meta-outage-1")), /SUCCESS/);
  } finally {
    redis.disconnect();
    await broker.close();
    await backend.close();
    await server.close();
  }
});
