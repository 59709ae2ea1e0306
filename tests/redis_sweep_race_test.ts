import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { openRedisBroker } from "../src/broker/redis.ts";
import { CLAIM_LEASE_SECONDS, claimList, CLAIMS_KEY } from "../src/broker/redis_claims.ts";
import {
  defineScripts,
  type RedisScope,
  type ScriptedRedis,
} from "../src/broker/redis_commands.ts";
import { ClaimWatchers } from "../src/broker/redis_watchers.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/**
 * Another broker's sweep on `prefix`: `between` runs after it listed the stale claims and
 * before it returns each of them.
 */
function sweeper(client: ScriptedRedis, prefix: string, between: () => Promise<void>) {
  const paused = new Proxy(client, {
    get(target, key) {
      if (key !== "zrangebyscore") return Reflect.get(target, key);
      return async (...args: Parameters<ScriptedRedis["zrangebyscore"]>) => {
        const listed = await target.zrangebyscore(...args);
        await between();
        return listed;
      };
    },
  });
  const scope: RedisScope = {
    client: paused,
    rawUrl: REDIS_URL,
    db: 0,
    k: (key) => prefix + key,
    run: (fn) => fn(),
  };
  return new ClaimWatchers(scope);
}

Deno.test({
  name: "redis claims: a sweep that listed a claim as stale leaves it when its waiter renewed " +
    "it since and handed out what it claimed (the message runs once, the claim stays registered)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const p = uniquePrefix("sweep-race");
  const q = uniqueQueue("sweep-race");
  const a = await openRedisBroker(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(p)}`);
  const r = await rawRedis();
  const client = defineScripts(new Redis(REDIS_URL)) as Redis & ScriptedRedis;
  try {
    // A waits on the empty queue: its watcher registers its claim list and blocks.
    const taking = a.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    let member: string | undefined;
    while (!member) {
      await new Promise((res) => setTimeout(res, 20));
      [member] = await r.zrange(`${p}${CLAIMS_KEY}`, "0", "-1");
    }
    assert.equal(member.slice(member.indexOf("|") + 1), q, "A's claim list of the queue");
    // As after A took from a backlog for longer than the lease without waiting.
    await r.zadd(`${p}${CLAIMS_KEY}`, Date.now() / 1000 - CLAIM_LEASE_SECONDS - 10, member);
    let handedOut = 0;
    const sweep = sweeper(client, p, async () => {
      // Between the sweep's listing and its return: A renews and claims a message, handed
      // out early.
      await r.zadd(`${p}${CLAIMS_KEY}`, Date.now() / 1000, member!);
      await a.publish(message("once"), { routingKey: q });
      handedOut = (await taking).length;
    });
    const moved = await sweep.returnClaims(false);
    assert.equal(handedOut, 1, "A handed the message out before the sweep returned its claim");
    assert.equal(moved, 0, "nothing returned");
    assert.equal(await r.llen(`${p}${q}`), 0, "the message A runs is not queued for another");
    assert.ok(await r.zscore(`${p}${CLAIMS_KEY}`, member) !== null, "A's claim stays registered");
    const got = await taking;
    await a.ack(got);
    assert.equal(await r.llen(`${p}${q}`), 0);
    assert.equal(await r.llen(`${p}${member}`), 0, "acknowledged out of its claim list");
  } finally {
    client.disconnect();
    await a.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis claims: a sweep returns a claim still stale when it runs, and one unregistered " +
    "meanwhile not at all",
  ignore: WITHOUT_REDIS,
}, async () => {
  const p = uniquePrefix("sweep-stale");
  const q = uniqueQueue("sweep-stale");
  const r = await rawRedis();
  const client = defineScripts(new Redis(REDIS_URL)) as Redis & ScriptedRedis;
  const dead = claimList("dead0000", q);
  const gone = claimList("gone0000", q);
  try {
    await r.rpush(`${p}${dead}`, "d");
    await r.rpush(`${p}${gone}`, "g");
    const old = Date.now() / 1000 - CLAIM_LEASE_SECONDS - 10;
    await r.zadd(`${p}${CLAIMS_KEY}`, old, dead, old, gone);
    // Its owner's release (or another sweep) returns `gone` between the listing and the return.
    const sweep = sweeper(client, p, async () => {
      await r.zrem(`${p}${CLAIMS_KEY}`, gone);
    });
    assert.equal(await sweep.returnClaims(false), 1);
    assert.deepEqual(await r.lrange(`${p}${q}`, 0, -1), ["d"]);
    assert.equal(await r.zscore(`${p}${CLAIMS_KEY}`, dead), null, "unregistered once returned");
    assert.deepEqual(await r.lrange(`${p}${gone}`, 0, -1), ["g"], "not its sweep's to return");
  } finally {
    client.disconnect();
    await deleteKeys(p);
    await r.quit();
  }
});
