/**
 * A warm shutdown waits for a step unless the step's own operations wait
 * for a server that stays unreachable (OutageWatch). Before, any operation
 * of the process that failed once (a 100 ms blip on another server) made
 * the shutdown leave a healthy step behind at once, even one already ended:
 * prefetched messages stayed unacknowledged for the visibility timeout and
 * finished tasks were acknowledged only by redelivery.
 */

import assert from "node:assert/strict";
import { BrokerConnectionError, retryWhileDown } from "../protocol.ts";
import { OutageWatch } from "../src/broker/outage.ts";

const down = () => new BrokerConnectionError("redis://other:6379/0", new Error("ECONNRESET"));
const wait = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

/** An operation that fails `times` times as if its server were down, then gets through. */
function failing(times: number, signal?: AbortSignal): Promise<number> {
  let n = 0;
  return retryWhileDown(() => n++ < times ? Promise.reject(down()) : Promise.resolve(1), {
    limit: 10,
    signal,
  });
}

Deno.test("OutageWatch: a blip of an operation outside the step leaves a healthy step waited for", async () => {
  const watch = new OutageWatch();
  const blip = failing(1);
  const t0 = Date.now();
  assert.equal(await watch.unless(watch.run(() => wait(300)), 200), false);
  assert.ok(Date.now() - t0 >= 290, "waited for the step");
  assert.equal(await blip, 1);
});

Deno.test("OutageWatch: a long outage of another server does not end a healthy step's wait", async () => {
  const stop = new AbortController();
  const other = new OutageWatch();
  const elsewhere = other.run(() => failing(1000, stop.signal)).catch(() => 0);
  try {
    await wait(50);
    const watch = new OutageWatch();
    assert.equal(await watch.unless(watch.run(() => wait(400)), 100), false);
  } finally {
    stop.abort();
    await elsewhere;
  }
});

Deno.test("OutageWatch: the step's own operation down for a blip is waited for", async () => {
  const watch = new OutageWatch();
  const step = watch.run(async () => {
    await failing(2);
  });
  assert.equal(await watch.unless(step, 1000), false);
});

Deno.test("OutageWatch: the step's own operation down past the grace period leaves it behind", async () => {
  const stop = new AbortController();
  const watch = new OutageWatch();
  const step = watch.run(async () => {
    await failing(1000, stop.signal);
  });
  const t0 = Date.now();
  assert.equal(await watch.unless(step, 300), true);
  const ms = Date.now() - t0;
  assert.ok(ms >= 290 && ms < 2000, `left behind after ${ms} ms`);
  stop.abort();
  await assert.rejects(step, BrokerConnectionError);
});

Deno.test("OutageWatch: a step that has ended is never left behind", async () => {
  const stop = new AbortController();
  const watch = new OutageWatch();
  // One of the watch's operations has waited for a server longer than the grace period.
  const stuck = watch.run(() => failing(1000, stop.signal)).catch(() => 0);
  try {
    await wait(150);
    assert.equal(await watch.unless(Promise.resolve(), 50), false);
  } finally {
    stop.abort();
    await stuck;
  }
});

Deno.test("OutageWatch: error is the one of the operation waiting longest, none once nothing waits", async () => {
  const stop = new AbortController();
  const watch = new OutageWatch();
  const unreachable = new BrokerConnectionError("redis://a:6379/0", new Error("ECONNREFUSED"));
  const full = new BrokerConnectionError("kv:///q.sqlite", new Error("disk full"), {
    verb: "write",
  });
  assert.equal(watch.error, null);
  // A waits for good; B starts waiting later, fails once and gets through.
  const a = watch.run(() =>
    retryWhileDown(() => Promise.reject(unreachable), { limit: 10, signal: stop.signal })
  ).catch(() => 0);
  await wait(50);
  let n = 0;
  await watch.run(() =>
    retryWhileDown(() => n++ === 0 ? Promise.reject(full) : Promise.resolve(1), { limit: 10 })
  );
  // Before: lastError alone, the error of B (the last to start waiting), kept after it got through.
  assert.equal(watch.error, unreachable);
  assert.equal(watch.lastError, full);
  stop.abort();
  await a;
  assert.equal(watch.error, null);
});
