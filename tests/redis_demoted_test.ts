/**
 * A Redis master demoted to a replica while the broker stays connected to
 * it (a Sentinel failover of a live master) answers writes with READONLY;
 * the broker's connection reconnects (through the Sentinels, to the new
 * master) and sends them again. A requeue runs its restore scripts in one
 * transaction, whose errors ioredis does not pass to `reconnectOnError`:
 * it must reconnect and retry by itself; an acknowledgement (a transaction
 * too) must be retried, not dropped. Runs on two private redis-server
 * processes — never the shared server.
 */

import assert from "node:assert/strict";
import type { Broker, Delivery } from "../src/broker/port.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { isConnectionFailure, refusedAsReplica } from "../src/broker/redis_failures.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { command, privateServers, waitUntil } from "./helpers/redis_servers.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

function synced(port: number): Promise<boolean> {
  return command(port, "INFO", "replication").then((i) =>
    String(i).includes("master_link_status:up")
  );
}

/**
 * Two private servers, a master and its replica, a broker on the master
 * with two messages taken; `settle` runs while the master is demoted (the
 * replica promoted) and is promoted again 500 ms later.
 */
async function whileDemoted(
  name: string,
  settle: (broker: Broker, got: Delivery[]) => Promise<void>,
  check: (port: number, queue: string) => Promise<void>,
): Promise<void> {
  const servers = await privateServers(name, async (s) => {
    await s.redis(0);
    await s.redis(1, ["--replicaof", "127.0.0.1", String(s.base)]);
    await waitUntil("the replica to sync", () => synced(s.base + 1), 10_000);
  });
  const [a, b] = [servers.base, servers.base + 1];
  const broker = await openRedisBroker(`redis://127.0.0.1:${a}/0`);
  try {
    const q = uniqueQueue(name);
    for (const t of ["m1", "m2"]) await broker.publish(message(t), { routingKey: q });
    const got = await broker.take([q], { max: 2, signal: AbortSignal.timeout(5000) });
    assert.equal(got.length, 2);
    // a becomes b's replica (b has a's data), then a master again 500 ms later.
    await waitUntil("the take to reach the replica", async () => {
      return Number(await command(b, "HLEN", "unacked")) === 2;
    }, 5000);
    await command(b, "REPLICAOF", "NO", "ONE");
    await command(a, "REPLICAOF", "127.0.0.1", String(b));
    await waitUntil("a to sync from b", () => synced(a), 10_000);
    const promoted = new Promise((r) => setTimeout(r, 500)).then(() =>
      command(a, "REPLICAOF", "NO", "ONE")
    );
    await settle(broker, got);
    await promoted;
    await check(a, q);
  } finally {
    await broker.close();
    await servers.stop();
  }
}

Deno.test({
  name: "redis: a requeue on a master demoted meanwhile reconnects and retries (READONLY)",
  ignore: WITHOUT_REDIS,
}, async () => {
  await whileDemoted("demoted", (broker, got) => broker.requeue(got), async (a, q) => {
    assert.equal(Number(await command(a, "HLEN", "unacked")), 0);
    assert.equal(Number(await command(a, "LLEN", q)), 2);
  });
});

Deno.test({
  name:
    "redis: an acknowledgement on a master demoted meanwhile is retried, not dropped (READONLY)",
  ignore: WITHOUT_REDIS,
}, async () => {
  await whileDemoted("demoted-ack", (broker, got) => broker.ack(got), async (a, q) => {
    assert.equal(Number(await command(a, "HLEN", "unacked")), 0, "the acknowledgement reached a");
    assert.equal(Number(await command(a, "ZCARD", "unacked_index")), 0);
    assert.equal(Number(await command(a, "LLEN", q)), 0);
  });
});

Deno.test("redis demoted: a transaction cut off by its connection is not taken for READONLY", () => {
  // ioredis (transaction.js) fails every queued command of a transaction cut off by the
  // connection closing with one error object, then lists them all as that error's
  // previousErrors: itself among them. Following them overflowed the stack, and the
  // acknowledgement failed ("Settling failed: Maximum call stack size exceeded") instead of
  // being retried as an outage.
  const closed = new Error("Connection is closed.") as Error & { previousErrors: Error[] };
  closed.previousErrors = [closed, closed];
  assert.equal(refusedAsReplica(closed), false);
  assert.ok(isConnectionFailure(closed), "retried as an outage");
  const aborted = new Error("EXECABORT Transaction discarded") as Error & {
    previousErrors: Error[];
  };
  aborted.previousErrors = [aborted, new Error("READONLY You can't write against a replica.")];
  assert.equal(refusedAsReplica(aborted), true);
});
