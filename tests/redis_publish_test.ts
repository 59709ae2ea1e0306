/**
 * The Redis publisher's batches through ioredis (Sentinel, Cluster), on a
 * stand-in connection whose LPUSH can be made to fail: what a failover in
 * the middle of a batch leaves in the lists.
 */

import assert from "node:assert/strict";
import { VALUES_PER_COMMAND } from "../src/broker/chunks.ts";
import type { RedisScope } from "../src/broker/redis_commands.ts";
import { guardRedis } from "../src/broker/redis_guard.ts";
import { RedisPublisher } from "../src/broker/redis_publish.ts";
import { message } from "./broker_conformance.ts";

Deno.test("redis publisher: a chunk lost to a failover is sent again, the others once", async () => {
  const lists = new Map<string, string[]>();
  let calls = 0;
  const client = {
    sadd: () => Promise.resolve(1),
    lpush: (list: string, ...values: string[]) => {
      // The second LPUSH of the first attempt finds the old master gone.
      if (++calls === 2) return Promise.reject(new Error("Connection is closed."));
      const l = lists.get(list) ?? [];
      for (const v of values) l.unshift(v);
      lists.set(list, l);
      return Promise.resolve(l.length);
    },
  };
  const rawUrl = "sentinel://127.0.0.1:1/0?master_name=m";
  const scope = {
    client,
    rawUrl,
    db: 0,
    k: (key: string) => key,
    run: (fn: () => Promise<unknown>) => guardRedis(rawUrl, fn),
  } as unknown as RedisScope;
  const n = 3 * VALUES_PER_COMMAND;
  await new RedisPublisher(scope).publishMany(
    Array.from(
      { length: n },
      (_, i) => ({ message: message(`m${i}`), target: { routingKey: "q" } }),
    ),
  );
  const bodies = (lists.get("q") ?? []).map((raw) => {
    const envelope = JSON.parse(raw);
    return JSON.parse(atob(envelope.body));
  });
  assert.equal(bodies.length, n, "each message is in the list once");
  assert.equal(new Set(bodies).size, n);
});
