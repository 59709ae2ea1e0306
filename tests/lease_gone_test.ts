/**
 * `extend()` on the brokers with leases (KV, Redis) renews the live ones
 * and resolves with the deliveries a restore sweep took back after their
 * lease ran out, so that a worker drops the copy it still holds (an ETA
 * task) instead of running it as well as the redelivered message. (On
 * Redis only until a consumer takes the message again: kombu's delivery
 * tag stays with the message, so its tag is in `unacked_index` again.)
 */

import assert from "node:assert/strict";
import { openKvBroker } from "../src/broker/kv.ts";
import type { Broker, Delivery } from "../src/broker/port.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const HELD = 120;
const LIVE = 60;

/** Hold `HELD` deliveries, renew the first `LIVE` only, and check what extend() reports gone. */
async function renewSome(open: () => Promise<Broker>): Promise<void> {
  const holder = await open();
  const sweeper = await open();
  try {
    const q = uniqueQueue("lease-gone");
    for (let i = 0; i < HELD; i++) await holder.publish(message(`m${i}`), { routingKey: q });
    const held: Delivery[] = [];
    while (held.length < HELD) held.push(...await holder.take([q], { max: 64 }));
    // the first LIVE renewed in time while the others' leases (0.5 s) run out
    const until = Date.now() + 1_000;
    while (Date.now() < until) {
      assert.deepEqual(await holder.extend(held.slice(0, LIVE)), []);
      await new Promise((r) => setTimeout(r, 100));
    }
    const restoredBy = Date.now() + 5_000;
    while (await holder.queueDepth(q) < HELD - LIVE && Date.now() < restoredBy) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const gone = await holder.extend(held);
    assert.deepEqual(gone.map((d) => d.deliveryTag), held.slice(LIVE).map((d) => d.deliveryTag));
    const restored: Delivery[] = [];
    const signal = AbortSignal.timeout(5_000);
    while (restored.length < HELD - LIVE && !signal.aborted) {
      restored.push(...await sweeper.take([q], { max: 64, signal }));
    }
    assert.equal(restored.length, HELD - LIVE);
    await holder.ack(held.slice(0, LIVE));
    await sweeper.ack(restored);
    assert.deepEqual(
      await holder.extend(held.slice(0, 1)),
      held.slice(0, 1),
      "an acknowledged one is gone too",
    );
  } finally {
    await holder.close();
    await sweeper.close();
  }
}

Deno.test("kv extend(): renews live leases and reports those a sweep restored", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-lease-gone-" });
  try {
    await renewSome(() => openKvBroker(`kv://${dir}/b.sqlite`, { visibilityTimeout: 0.5 }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "redis extend(): renews live leases and reports those a sweep restored",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("lease-gone");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}&visibility_timeout=0.5`;
  try {
    await renewSome(() => openRedisBroker(url));
  } finally {
    await deleteKeys(prefix);
  }
});
