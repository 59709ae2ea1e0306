/**
 * Claim lists (src/broker/redis_claims.ts): a message a worker claimed but
 * never took (it died in between) goes back to the front of its queue.
 */

import assert from "node:assert/strict";
import { openRedisBroker } from "../src/broker/redis.ts";
import { claimedList, claimList, CLAIMS_KEY, ClaimWatcher } from "../src/broker/redis_claims.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test("redis claims: a claim list names its queue list", () => {
  const name = claimList("abc123", "q|odd\x06\x163");
  assert.equal(name, "celeriac.claim.abc123|q|odd\x06\x163");
  assert.equal(claimedList(name), "q|odd\x06\x163");
  assert.equal(claimedList("unacked"), null);
});

Deno.test({
  name: "redis claims: a message claimed by a worker that died comes back and is taken",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("claims");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const q = uniqueQueue("claims");
  const publisher = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    // A dead worker's claim: the message moved to its claim list 100 s ago.
    await publisher.publish(message("orphan"), { routingKey: q });
    const dead = claimList("dead0000", q);
    assert.ok(await r.lmove(`${prefix}${q}`, `${prefix}${dead}`, "RIGHT", "LEFT"));
    await r.zadd(`${prefix}${CLAIMS_KEY}`, Date.now() / 1000 - 100, dead);
    const consumer = await openRedisBroker(url);
    try {
      const got = await consumer.take([q], { max: 10, signal: AbortSignal.timeout(10_000) });
      assert.equal(got.length, 1);
      assert.equal(JSON.parse(new TextDecoder().decode(got[0].body)), "orphan");
      await consumer.ack(got);
      assert.equal(await r.llen(`${prefix}${dead}`), 0);
      assert.equal(await r.zscore(`${prefix}${CLAIMS_KEY}`, dead), null);
    } finally {
      await consumer.close();
    }
  } finally {
    await publisher.close();
    await r.quit();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis claims: a waiter renews its claim before its first wait, then only once " +
    "renewEvery has passed, and again after a failed renewal",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("claim-renew");
  const list = `${prefix}q`;
  const conn = await rawRedis();
  const r = await rawRedis();
  const renewals = (every: number, fail = false) => {
    const sent: number[] = [];
    const watcher = new ClaimWatcher(conn, list, `${prefix}claim`, (c) => {
      sent.push(1);
      return fail && sent.length === 1 ? Promise.reject(new Error("cut")) : c.ping();
    }, every);
    return { sent, watcher };
  };
  const claimOne = async (w: ClaimWatcher) => {
    await r.lpush(list, "m");
    return await w.wait();
  };
  try {
    const lazy = renewals(60_000);
    assert.equal(await claimOne(lazy.watcher), true);
    assert.equal(await claimOne(lazy.watcher), true);
    assert.equal(await claimOne(lazy.watcher), true);
    assert.equal(lazy.sent.length, 1, "renewed before the first wait only");
    const eager = renewals(0);
    await claimOne(eager.watcher);
    await claimOne(eager.watcher);
    assert.equal(eager.sent.length, 2, "renewed before every wait");
    const failing = renewals(60_000, true);
    assert.equal(await claimOne(failing.watcher), false, "a wait whose renewal failed");
    assert.equal(await claimOne(failing.watcher), true);
    assert.equal(failing.sent.length, 2, "the failed renewal was sent again");
    assert.equal(await r.llen(`${prefix}claim`), 7, "every wait claimed its message");
  } finally {
    await conn.quit();
    await r.quit();
    await deleteKeys(prefix);
  }
});
