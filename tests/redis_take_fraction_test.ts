import assert from "node:assert/strict";
import { openRedisBroker } from "../src/broker/redis.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const prefix = uniquePrefix("take-fraction");
const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

Deno.test({
  name: "redis broker: a fractional take max is rounded down, as Redis Cluster and RabbitMQ do",
  ignore: WITHOUT_REDIS,
}, async () => {
  const broker = await openRedisBroker(url);
  try {
    const q = uniqueQueue("fraction");
    for (let i = 0; i < 4; i++) await broker.publish(message(`m${i}`), { routingKey: q });
    const got = await broker.take([q], { max: 2.5, signal: AbortSignal.timeout(5000) });
    assert.equal(got.length, 2);
    assert.equal(await broker.queueDepth(q), 2);
    await broker.ack(got);
  } finally {
    await broker.close();
    await deleteKeys(prefix);
  }
});
