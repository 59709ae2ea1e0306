/**
 * Closing a Redis broker whose server stops answering over a connection
 * that stays up (a hung server, a network that drops replies): close()
 * gives up waiting after CLOSE_WAIT_MS per step and drops the connection
 * instead of hanging.
 */

import assert from "node:assert/strict";
import type { Delivery } from "../src/broker/port.ts";
import { openRedisBackend } from "../src/backend/redis.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { settlesWithin } from "./helpers/settles.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name: "redis broker: close() ends when the server stops answering (after a take and an ack)",
  ignore: WITHOUT_REDIS,
  // The commands left unanswered are dropped with the connection.
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const prefix = uniquePrefix("close-silent");
  const query = `?global_keyprefix=${encodeURIComponent(prefix)}`;
  const { proxy, url } = LossyProxy.before(`${REDIS_URL}${query}`);
  const broker = await openRedisBroker(url);
  try {
    const q = uniqueQueue("close-silent");
    await broker.publish(message("one"), { routingKey: q });
    const taken = await broker.take([q], { max: 1, signal: AbortSignal.timeout(10_000) });
    assert.equal(taken.length, 1);
    await broker.ack(taken);
    proxy.holdReplies();
    await closesWithin20s(broker);
  } finally {
    proxy.close();
    await deleteKeys(prefix);
  }
});

/** Close `broker`; fail when that is still waiting after 20 s. */
async function closesWithin20s(broker: { close(): Promise<void> }): Promise<void> {
  assert.ok(
    await settlesWithin(broker.close(), 20_000),
    "close() still waiting 20 s after the server stopped answering",
  );
}

const texts = (ds: Delivery[]) => ds.map((d) => JSON.parse(new TextDecoder().decode(d.body)));

Deno.test({
  name: "redis broker: close() ends when the server stops answering while messages taken but " +
    "not handed out go back, and they all come back by the visibility timeout",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const prefix = uniquePrefix("close-silent-left");
  const query = `?global_keyprefix=${encodeURIComponent(prefix)}`;
  const { proxy, url } = LossyProxy.before(`${REDIS_URL}${query}`);
  const broker = await openRedisBroker(url);
  const other = await openRedisBroker(`${REDIS_URL}${query}&visibility_timeout=1`, {
    restoreInterval: 0.5,
  });
  const r = await rawRedis();
  try {
    const q = uniqueQueue("close-silent-left");
    // Connection 0 is the broker's ioredis connection (requeues, claims returned, the take
    // record's DEL, QUIT): the server stops answering there; takes (connection 1) go on.
    proxy.holdReplies(0);
    const taking = broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    await new Promise((res) => setTimeout(res, 20));
    await other.publishMany(
      ["a", "b", "c"].map((t) => ({ message: message(t), target: { routingKey: q } })),
    );
    const got = await taking;
    assert.deepEqual(texts(got), ["a"], "handed out before its take script runs");
    // The next take sends that script and ends before it replies: what it takes beside a
    // (b and c) is taken, not handed out, and goes back to the queue.
    assert.deepEqual(await broker.take([q], { max: 10, signal: AbortSignal.abort() }), []);
    await closesWithin20s(broker);
    proxy.cut();
    // Nothing lost: what is not back in the queue is unacknowledged, restored after 1 s.
    const back: Delivery[] = [];
    const until = Date.now() + 10_000;
    while (back.length < 3 && Date.now() < until) {
      back.push(...await other.take([q], { max: 10, signal: AbortSignal.timeout(3000) }));
    }
    assert.deepEqual(texts(back).sort(), ["a", "b", "c"]);
    await other.ack(back);
    assert.equal(await r.hlen(`${prefix}unacked`), 0);
  } finally {
    proxy.close();
    await other.close();
    await r.quit();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis result backend: close() ends when the server stops answering, and a store " +
    "waiting for its reply fails then instead of retrying for the outage limit",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const prefix = uniquePrefix("close-silent-backend");
  const query = `?global_keyprefix=${encodeURIComponent(prefix)}`;
  const { proxy, url } = LossyProxy.before(`${REDIS_URL}${query}`);
  const backend = await openRedisBackend(url);
  try {
    const waiting = backend.waitFor(crypto.randomUUID());
    waiting.catch(() => {});
    const id = crypto.randomUUID();
    await backend.store([{ taskId: id, status: "STARTED", meta: `{"task_id":"${id}"}` }]);
    proxy.holdReplies();
    const storing = backend.store([{ taskId: id, status: "SUCCESS", meta: `{"task_id":"${id}"}` }]);
    storing.catch(() => {});
    await closesWithin20s(backend);
    await assert.rejects(waiting, { name: "AbortError" });
    assert.ok(await settlesWithin(storing, 20_000), "the store still retrying 20 s after close()");
    await assert.rejects(storing);
  } finally {
    proxy.close();
    await deleteKeys(prefix);
  }
});
