/**
 * A delivery handed out before its take script was recorded, when the broker
 * closes first (Redis went away meanwhile): settling it fails with a
 * `BrokerConnectionError` naming the broker's URL as its URL, and the reason
 * in its place (it once had the sentence in the place of the URL).
 */

import assert from "node:assert/strict";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";

Deno.test("redis early hand-out: closing before its take was recorded names the broker URL", async () => {
  const server = await PrivateRedis.start();
  const broker = await openRedisBroker(server.url, { outageRetryLimit: 60 });
  const q = uniqueQueue("take-close");
  try {
    const taking = broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    await new Promise((r) => setTimeout(r, 20));
    await broker.publishMany([{ message: message("one"), target: { routingKey: q } }]);
    const got = await taking;
    assert.equal(got.length, 1);
    await server.down();
    const acking = broker.ack(got);
    const closed = broker.close();
    await assert.rejects(acking, (err: unknown) => {
      assert.ok(err instanceof BrokerConnectionError, String(err));
      assert.equal(err.url, server.url);
      assert.equal(err.reason, "the broker closed before the take was recorded");
      return true;
    });
    await closed;
  } finally {
    await broker.close().catch(() => {});
    await server.close();
  }
});
