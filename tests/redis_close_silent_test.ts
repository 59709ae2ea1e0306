/**
 * Closing a Redis broker whose server stops answering over a connection
 * that stays up (a hung server, a network that drops replies): close()
 * gives up waiting after CLOSE_WAIT_MS per step and drops the connection
 * instead of hanging.
 */

import assert from "node:assert/strict";
import { openRedisBroker } from "../src/broker/redis.ts";
import { parseRedisUrl } from "../src/broker/redis_url.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name: "redis broker: close() ends when the server stops answering (after a take and an ack)",
  ignore: WITHOUT_REDIS,
  // The commands left unanswered are dropped with the connection.
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const prefix = uniquePrefix("close-silent");
  const target = parseRedisUrl(REDIS_URL);
  const proxy = LossyProxy.start({ hostname: target.host, port: target.port });
  const query = `?global_keyprefix=${encodeURIComponent(prefix)}`;
  const broker = await openRedisBroker(`redis://127.0.0.1:${proxy.port}/${target.db}${query}`);
  try {
    const q = uniqueQueue("close-silent");
    await broker.publish(message("one"), { routingKey: q });
    const taken = await broker.take([q], { max: 1, signal: AbortSignal.timeout(10_000) });
    assert.equal(taken.length, 1);
    await broker.ack(taken);
    proxy.holdReplies();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      broker.close().then(() => true),
      new Promise<false>((res) => timer = setTimeout(() => res(false), 20_000)),
    ]).finally(() => clearTimeout(timer));
    assert.ok(closed, "close() still waiting 20 s after the server stopped answering");
  } finally {
    proxy.close();
    await deleteKeys(prefix);
  }
});
