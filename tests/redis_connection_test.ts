/**
 * Which ioredis errors count as connection failures (retried while Redis is
 * down or failing over) and which pass through as command errors.
 */

import assert from "node:assert/strict";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { guardRedis } from "../src/broker/redis_guard.ts";
import { isConnectionFailure } from "../src/broker/redis_failures.ts";
import { openRedisConnection } from "../src/broker/redis_ioredis.ts";
import { parseRedisUrl } from "../src/broker/redis_url.ts";

/** ioredis's AbortError for a pipeline cut off by a closing connection (not exported by ioredis). */
function pipelineAborted(): Error {
  const err = new Error("Command aborted due to connection close");
  err.name = "AbortError";
  return err;
}

Deno.test("redis connection: connection failures and command errors are told apart", () => {
  assert.equal(isConnectionFailure(new Error("connect ECONNREFUSED 127.0.0.1:6379")), true);
  assert.equal(isConnectionFailure(new Error("Connection is closed.")), true);
  assert.equal(isConnectionFailure(pipelineAborted()), true);
  assert.equal(isConnectionFailure(new Error("WRONGTYPE Operation against a key")), false);
  assert.equal(isConnectionFailure("Connection is closed."), false, "only Error objects");
});

Deno.test("redis connection: an aborted pipeline is a BrokerConnectionError, and retried through Sentinel", async () => {
  await assert.rejects(
    guardRedis("redis://127.0.0.1:6379/0", () => Promise.reject(pipelineAborted())),
    (err) => err instanceof BrokerConnectionError,
  );
  let calls = 0;
  const value = await guardRedis(
    "sentinel://127.0.0.1:26379/0?master_name=m",
    () => ++calls === 1 ? Promise.reject(pipelineAborted()) : Promise.resolve("sent"),
  );
  assert.equal(value, "sent");
  assert.equal(calls, 2);
});

Deno.test("redis connection: ioredis' openRedisConnection says a redis:// URL is not for it", () => {
  const url = "redis://:secret@127.0.0.1:6379/0";
  assert.throws(() => openRedisConnection(parseRedisUrl(url), url), (err) => {
    assert.ok(err instanceof TypeError);
    assert.match(err.message, /Sentinel and Cluster URLs only/);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
});
