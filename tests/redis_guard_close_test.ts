/**
 * guardRedis on a Sentinel URL: a command that fails because its owner
 * closed the connection is not sent again for the whole failover wait, and
 * an error noted before the connection recovered does not explain a later
 * failure. Pure: the commands are stubs.
 */

import assert from "node:assert/strict";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { guardRedis, noteFailure, noteRecovered } from "../src/broker/redis_guard.ts";

const closedError = () => new Error("Connection is closed.");

Deno.test("redis guard: once the owner closed, a failed command is not sent again", async () => {
  const url = `sentinel://127.0.0.1:1/0?master_name=m-${crypto.randomUUID()}&failover_wait=60`;
  const closing = new AbortController();
  closing.abort();
  let calls = 0;
  // Sent again, the stub succeeds on its third call: a guard that retries resolves.
  const command = () => ++calls < 3 ? Promise.reject(closedError()) : Promise.resolve("sent again");
  await assert.rejects(guardRedis(url, command, closing.signal), BrokerConnectionError);
  assert.equal(calls, 1, "sent once");
});

Deno.test("redis guard: a connection that recovered forgets the error of its outage", async () => {
  const url = `sentinel://127.0.0.1:1/0?master_name=m-${crypto.randomUUID()}&failover_wait=60`;
  noteFailure(url, new Error("connect ECONNREFUSED 10.9.9.9:6379"));
  noteRecovered(url);
  const closing = new AbortController();
  closing.abort();
  const err = await guardRedis(url, () => Promise.reject(closedError()), closing.signal).then(
    () => null,
    (e: Error) => e,
  );
  assert.ok(err instanceof BrokerConnectionError);
  assert.doesNotMatch(String(err.message) + String((err.cause as Error)?.message), /10\.9\.9\.9/);
});

Deno.test("redis guard: closed while waiting to send again, the command is not sent again", async () => {
  const url = `sentinel://127.0.0.1:1/0?master_name=m-${crypto.randomUUID()}&failover_wait=60`;
  const closing = new AbortController();
  let calls = 0;
  // The first call fails as a failover would; the owner closes while the guard waits.
  const command = () => {
    if (++calls > 1) return Promise.resolve("sent after close");
    setTimeout(() => closing.abort(), 20);
    return Promise.reject(closedError());
  };
  await assert.rejects(guardRedis(url, command, closing.signal), BrokerConnectionError);
  assert.equal(calls, 1, "not sent after close");
});
