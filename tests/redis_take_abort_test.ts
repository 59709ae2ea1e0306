/**
 * A Redis take whose signal aborted before it would wait (a warm shutdown
 * right after start-up, while the take script ran) returns without sending
 * a wait: the wait's `BLMOVE` (1 s timeout) once went out with an abort
 * event already past, so the take, and the shutdown behind it, lasted until
 * the wait timed out. A wait sent registers its claim list in the claims set
 * first, on the same connection: with no wait sent, the set stays empty.
 */

import assert from "node:assert/strict";
import { openRedisBroker } from "../src/broker/redis.ts";
import { CLAIMS_KEY } from "../src/broker/redis_claims.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name: "redis take: aborted while its take script runs, it sends no wait",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("take-abort");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const broker = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    const stop = new AbortController();
    const taking = broker.take([uniqueQueue("take-abort")], { max: 10, signal: stop.signal });
    stop.abort(); // the take script is under way
    assert.deepEqual(await taking, []);
    assert.equal(await r.zcard(`${prefix}${CLAIMS_KEY}`), 0, "a wait was sent after the abort");
  } finally {
    await broker.close();
    await deleteKeys(prefix);
    r.disconnect();
  }
});

Deno.test({
  name: "redis take: after a take that emptied the queue, an aborted one sends no wait",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("take-abort");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const q = uniqueQueue("take-abort");
  const broker = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    await broker.publish(message("one"), { routingKey: q });
    // One of up to 10: the take found the queue empty behind it, so the next one waits first.
    const got = await broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    assert.equal(got.length, 1);
    await broker.ack(got);
    assert.deepEqual(await broker.take([q], { max: 10, signal: AbortSignal.abort() }), []);
    assert.equal(await r.zcard(`${prefix}${CLAIMS_KEY}`), 0, "a wait was sent after the abort");
  } finally {
    await broker.close();
    await deleteKeys(prefix);
    r.disconnect();
  }
});
