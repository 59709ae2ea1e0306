/**
 * A Redis Cluster take over several queues, on fake queue transports: a
 * queue whose master hangs (no reply, not yet known unreachable) does not
 * hold up what another queue's take returned; what the hung take returns
 * later goes back to its queue.
 */

import assert from "node:assert/strict";
import type { Delivery } from "../src/broker/port.ts";
import type { RedisBroker } from "../src/broker/redis.ts";
import { ClusterTakes } from "../src/broker/redis_cluster_take.ts";

const delivery = (queue: string, id: string) => ({ queue, id }) as unknown as Delivery;

Deno.test("cluster takes: a hung master's take does not hold up another queue's messages", async () => {
  const hung = Promise.withResolvers<Delivery[]>();
  const shards = new Map([
    ["live", { unreachable: false, take: () => Promise.resolve([delivery("live", "a1")]) }],
    // Its master was SIGSTOPped: the script's reply never comes (until the command timeout).
    ["hung", { unreachable: false, take: () => hung.promise }],
  ]);
  const requeued: Delivery[] = [];
  const takes = new ClusterTakes(
    (q) => shards.get(q) as unknown as RedisBroker,
    (ds) => {
      requeued.push(...ds);
      return Promise.resolve();
    },
  );
  // Before: the take waited for the hung queue's take (30 s for a real master); here forever.
  const got = await takes.take(["live", "hung"], { max: 10 });
  assert.deepEqual(got.map((d) => d.queue), ["live"]);
  hung.resolve([delivery("hung", "b1")]);
  await takes.close();
  assert.deepEqual(requeued.map((d) => d.queue), ["hung"]);
});
