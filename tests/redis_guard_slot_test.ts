/**
 * On a Redis Cluster, a command whose slot's master is unreachable fails at
 * once only when that master (named by the error, or serving the slot of
 * the command's keys) is down with no replica; a command to a master in a
 * failover is sent again, whatever other master without a replica is down.
 * Driven by a fake cluster client (the events and slot map ioredis gives).
 */

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { Cluster } from "ioredis";
import { keySlot, watchClusterNodes } from "../src/broker/redis_cluster_watch.ts";
import { guardRedis } from "../src/broker/redis_guard.ts";

class FakeCluster extends EventEmitter {
  slots: string[][] = [];
  status = "ready";
  refreshSlotsCache(): void {}
  nodes(): never[] {
    return [];
  }
}

const LONE = "10.9.9.1:7000"; // slots 0-8191, no replica
const REPLICATED = "10.9.9.2:7001"; // slots 8192-16383, replica 10.9.9.3:7002
const URL = `redis+cluster://${LONE},${REPLICATED}?failover_wait=5`;
const cluster = new FakeCluster();
cluster.slots = Array.from(
  { length: 16384 },
  (_, slot) => slot < 8192 ? [LONE] : [REPLICATED, "10.9.9.3:7002"],
);
watchClusterNodes(cluster as unknown as Cluster, `${LONE},${REPLICATED}`, 5_000);
const refused = (node: string) => new Error(`connect ECONNREFUSED ${node}`);
cluster.emit("node error", refused(LONE), LONE);
cluster.emit("node error", refused(REPLICATED), REPLICATED);

/**
 * A command failing `times` times, then "ok": as ioredis's redirections do (no MOVED node), or
 * with `message` (a MULTI/EXEC or script sent to a dead master: "Connection is closed.").
 */
function failing(
  times: number,
  message = "Too many Cluster redirections. Last error: Error: Connection is closed.",
): { calls: number; fn: () => Promise<string> } {
  const seen = {
    calls: 0,
    fn: () => {
      seen.calls++;
      if (seen.calls > times) return Promise.resolve("ok");
      return Promise.reject(new Error(message));
    },
  };
  return seen;
}

const onLone = "bar"; // slot 5061
const onReplicated = "foo"; // slot 12182

Deno.test("cluster guard: the keys' slots are served as the fake says", () => {
  assert.ok(keySlot(onLone) < 8192);
  assert.ok(keySlot(onReplicated) >= 8192);
});

Deno.test("cluster guard: a command to a master in a failover is sent again while a master without a replica is down", async () => {
  // Before: any master without a replica that was down made it fail at once (1 call).
  const cmd = failing(2);
  assert.equal(await guardRedis(URL, cmd.fn, undefined, [onReplicated]), "ok");
  assert.equal(cmd.calls, 3);
});

Deno.test("cluster guard: a command whose keys' master is down with no replica fails at once", async () => {
  const cmd = failing(2);
  await assert.rejects(
    guardRedis(URL, cmd.fn, undefined, [onReplicated, onLone]),
    /master serving the key's slot is unreachable/,
  );
  assert.equal(cmd.calls, 1);
});

Deno.test("cluster guard: a command whose keys are not known is sent again", async () => {
  const cmd = failing(2);
  assert.equal(await guardRedis(URL, cmd.fn), "ok");
  assert.equal(cmd.calls, 3);
});

Deno.test("cluster guard: a closed connection for keys whose master is down with no replica fails at once", async () => {
  // Before: only ioredis's redirections text gave up early; a MULTI/EXEC (control.revoke's
  // ZADD, an ack) was sent again for the whole failover wait (65.7 s in review5's repro).
  const cmd = failing(2, "Connection is closed.");
  await assert.rejects(
    guardRedis(URL, cmd.fn, undefined, [onLone]),
    /slot is unreachable and has no replica to take over \(Connection is closed/,
  );
  assert.equal(cmd.calls, 1);
});

Deno.test("cluster guard: a closed connection for keys on a master with a replica, or for no keys, is sent again", async () => {
  const replicated = failing(2, "Connection is closed.");
  assert.equal(await guardRedis(URL, replicated.fn, undefined, [onReplicated]), "ok");
  assert.equal(replicated.calls, 3);
  const keyless = failing(2, "Connection is closed.");
  assert.equal(await guardRedis(URL, keyless.fn), "ok");
  assert.equal(keyless.calls, 3);
});
