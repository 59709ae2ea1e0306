/**
 * Acknowledgements riding on the next take script (redis_ack_rides.ts), on
 * a private redis-server whose command counts only this test moves: an
 * acknowledgement followed by a take in the same turn is made by that
 * take's script (no transaction of its own), before it takes; one that no
 * take follows, or asked for as the broker closes, is made on its own.
 * Either way `unacked` and `unacked_index` keep only what is unacknowledged.
 */

import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { openRedisBroker, type RedisBroker } from "../src/broker/redis.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { rawRedis } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/** Calls of `command` since the last `CONFIG RESETSTAT`. */
async function calls(r: Redis, command: string): Promise<number> {
  const info = await r.info("commandstats");
  const m = info.match(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m"));
  return m ? Number(m[1]) : 0;
}

/** A broker on a private server, `n` messages published to a queue of its own, and a raw client. */
async function withQueue(
  n: number,
  fn: (broker: RedisBroker, q: string, r: Redis) => Promise<void>,
): Promise<void> {
  const server = await PrivateRedis.start();
  const broker = await openRedisBroker(server.url);
  const r = await rawRedis(server.url);
  try {
    const q = uniqueQueue("ack-ride");
    for (let i = 0; i < n; i++) await broker.publish(message(`m${i}`), { routingKey: q });
    await fn(broker, q, r);
  } finally {
    await broker.close();
    r.disconnect();
    await server.close();
  }
}

Deno.test({
  name: "redis ack ride: an ack followed by a take in the same turn is made by its take script",
  ignore: WITHOUT_REDIS,
}, async () => {
  await withQueue(4, async (broker, q, r) => {
    const first = await broker.take([q], { max: 2 });
    assert.equal(first.length, 2);
    await r.config("RESETSTAT");
    const [, second] = await Promise.all([
      broker.ack(first),
      broker.take([q], { max: 2 }),
    ]);
    assert.equal(second.length, 2);
    assert.equal(await calls(r, "exec"), 0, "the acknowledgement was a transaction of its own");
    const left = (await r.hkeys("unacked")).sort();
    assert.deepEqual(left, second.map((d) => d.deliveryTag).sort());
    assert.deepEqual((await r.zrange("unacked_index", "0", "-1")).sort(), left);
  });
});

Deno.test({
  name: "redis ack ride: an ack no take follows, or asked for as the broker closes, is made alone",
  ignore: WITHOUT_REDIS,
}, async () => {
  await withQueue(3, async (broker, q, r) => {
    const [d] = await broker.take([q], { max: 1 });
    await broker.ack([d]);
    assert.equal(await r.hexists("unacked", d.deliveryTag), 0);
    const rest = await broker.take([q], { max: 2 });
    assert.equal(rest.length, 2);
    const acked = broker.ack(rest);
    await broker.close();
    await acked;
    assert.equal(await r.hlen("unacked"), 0);
    assert.equal(await r.zcard("unacked_index"), 0);
  });
});
