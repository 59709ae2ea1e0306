/**
 * The Redis transport survives a dropped connection: a test-owned TCP proxy
 * between the broker and Redis cuts every connection mid-stream.
 */

import assert from "node:assert/strict";
import { openRedisBroker } from "../src/broker/redis.ts";
import type { Delivery } from "../src/broker/port.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";

const prefix = uniquePrefix("reconnect");
const target = new URL(REDIS_URL);
const direct = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

/**
 * Through the proxy, with a short visibility timeout: a take whose reply, or
 * an ack whose command, is lost in a cut leaves its messages unacknowledged
 * in Redis; they come back after the timeout (at-least-once), never lost.
 */
function viaProxy(proxy: TcpProxy): string {
  return `redis://127.0.0.1:${proxy.port}${target.pathname}?global_keyprefix=${
    encodeURIComponent(prefix)
  }&visibility_timeout=2`;
}

const textOf = (d: Delivery) => JSON.parse(new TextDecoder().decode(d.body)) as string;

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `redis reconnect: ${name}`, ignore: WITHOUT_REDIS }, fn);

async function waitUntil(what: string, ok: () => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("a cut mid-stream: consumption resumes and every message is acknowledged once", async () => {
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 6379) });
  const consumer = await openRedisBroker(viaProxy(proxy));
  const publisher = await openRedisBroker(direct);
  const q = uniqueQueue("cut");
  const n = 300;
  const acked = new Set<string>();
  let errors = 0;
  try {
    const consuming = (async () => {
      const deadline = Date.now() + 30_000;
      while (acked.size < n && Date.now() < deadline) {
        let got: Delivery[];
        try {
          got = await consumer.take([q], { max: 10, signal: AbortSignal.timeout(1000) });
          for (const d of got) {
            assert.ok(!acked.has(textOf(d)), `${textOf(d)} came back after it was acknowledged`);
          }
          if (got.length) await consumer.ack(got);
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          errors++; // a worker logs and takes again, as here
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        for (const d of got) acked.add(textOf(d));
      }
    })();
    for (let i = 0; i < n; i++) {
      await publisher.publish(message(`m${i}`), { routingKey: q });
      if (i === n / 3) {
        await waitUntil("some are consumed", () => acked.size > 0);
        await proxy.cut();
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await consuming;
    assert.equal(acked.size, n, `${n - acked.size} messages were not consumed`);
    assert.ok(proxy.accepted > 1, "the consumer reconnected");
    assert.equal(await publisher.queueDepth(q), 0);
  } finally {
    await consumer.close();
    await publisher.close();
    await proxy.close();
  }
});

test("a take blocked on an empty queue resumes by itself after a cut", async () => {
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 6379) });
  const consumer = await openRedisBroker(viaProxy(proxy));
  const publisher = await openRedisBroker(direct);
  const q = uniqueQueue("blocked");
  try {
    const waiting = consumer.take([q], { max: 1, signal: AbortSignal.timeout(15_000) });
    await new Promise((r) => setTimeout(r, 300));
    await proxy.cut();
    await new Promise((r) => setTimeout(r, 300));
    await publisher.publish(message("after the cut"), { routingKey: q });
    const got = await waiting;
    assert.deepEqual(got.map(textOf), ["after the cut"]);
    await consumer.ack(got);
  } finally {
    await consumer.close();
    await publisher.close();
    await proxy.close();
  }
});

test("publishes through a cut: each lands or fails with BrokerConnectionError, then they land", async () => {
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 6379) });
  const publisher = await openRedisBroker(viaProxy(proxy));
  const reader = await openRedisBroker(direct);
  const q = uniqueQueue("publish-cut");
  let landed = 0;
  try {
    await publisher.publish(message("before"), { routingKey: q });
    landed++;
    await proxy.cut();
    for (let i = 0; i < 20; i++) {
      try {
        await publisher.publish(message(`during ${i}`), { routingKey: q });
        landed++;
      } catch (err) {
        assert.equal((err as Error).name, "BrokerConnectionError");
      }
    }
    let after = false;
    const deadline = Date.now() + 10_000;
    while (!after && Date.now() < deadline) {
      try {
        await publisher.publish(message("after"), { routingKey: q });
        after = true;
      } catch (err) {
        assert.equal((err as Error).name, "BrokerConnectionError");
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.ok(after, "a publish landed after the cut");
    landed++;
    // A publish whose reply was lost in the cut may have landed too (at least once).
    assert.ok(await reader.queueDepth(q) >= landed);
  } finally {
    await publisher.close();
    await reader.close();
    await proxy.close();
  }
});

test("clean up test keys", async () => {
  await deleteKeys(prefix);
});
