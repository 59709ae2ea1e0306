/**
 * Redis commands against a server that accepts and never answers: through
 * Sentinel or on a Cluster (ioredis) each fails after the URL's
 * `?socket_timeout=` (30 s by default) with a `BrokerConnectionError`
 * saying so; on a single server (Celeriac's own connections, also for queue
 * declarations, routing, restore sweeps, chords and result deletions) the
 * connection is dropped after as long and the command fails with a
 * `BrokerConnectionError` too, instead of waiting without end. The
 * hung servers are private (a LossyProxy in front of the shared server
 * holding its replies, or private redis-server processes stopped with
 * SIGSTOP: the kernel still accepts and acknowledges, nothing answers).
 */

import assert from "node:assert/strict";
import type { Cluster, Redis } from "ioredis";
import { openRedisBackend } from "../src/backend/redis.ts";
import { BatchPublishError, BrokerConnectionError } from "../src/broker/errors.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { openRedisClusterBroker, queueTag } from "../src/broker/redis_cluster.ts";
import {
  duplicateRedis,
  loadIoredis,
  openRedisConnection,
} from "../src/broker/redis_connection.ts";
import { parseRedisUrl } from "../src/broker/redis_url.ts";
import { RespClient } from "../src/broker/resp_client.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import {
  command,
  failoverSet,
  privateServers,
  type RedisProcess,
  waitUntil,
} from "./helpers/redis_servers.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { report } from "./helpers/report.ts";

function open(url: string): Redis {
  return openRedisConnection(parseRedisUrl(url), url) as unknown as Redis;
}

Deno.test("Redis connections wait the URL's socket_timeout for a reply, else 30 s", async () => {
  await loadIoredis();
  const single = openRedisConnection(parseRedisUrl("redis://127.0.0.1:1/0"), "redis://x");
  const sentinel = open("sentinel://127.0.0.1:1/0?master_name=m&socket_timeout=2.5");
  const cluster = open("redis+cluster://127.0.0.1:1,127.0.0.1:2?socket_timeout=4");
  try {
    assert.ok(single instanceof RespClient);
    assert.equal(single.commandTimeout, 30_000);
    assert.equal(sentinel.options.commandTimeout, 2_500);
    // A Sentinel that never answers is given up for the next one as soon.
    assert.equal(sentinel.options.sentinelCommandTimeout, 2_500);
    assert.equal((cluster as unknown as Cluster).options.redisOptions?.commandTimeout, 4_000);
    // A connection for blocking commands (BLMOVE / BRPOP of 1 s) waits 1 s longer.
    const blocking = duplicateRedis(sentinel, "sentinel://x", "w", true) as unknown as Redis;
    const plain = duplicateRedis(single, "redis://x", "p") as RespClient;
    const singleBlocking = duplicateRedis(single, "redis://x", "w", true) as RespClient;
    const clusterBlocking = duplicateRedis(
      cluster,
      "redis+cluster://x",
      "w",
      true,
    ) as unknown as Cluster;
    assert.equal(blocking.options.commandTimeout, 3_500);
    assert.equal(plain.commandTimeout, 30_000);
    assert.equal(singleBlocking.commandTimeout, 31_000);
    assert.equal(clusterBlocking.options.redisOptions?.commandTimeout, 5_000);
    for (const c of [blocking, plain, singleBlocking, clusterBlocking]) c.disconnect();
  } finally {
    for (const c of [single, sentinel, cluster]) c.disconnect();
  }
  assert.throws(() => open("redis://127.0.0.1:1/0?socket_timeout=0"), /Invalid socket_timeout/);
});

/** The error `p` rejects with within `ms`, or a failure saying it still waits. */
async function failure(p: Promise<unknown>, ms: number, what: string): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const started = Date.now();
  const outcome = await Promise.race([
    p.then(() => ({ resolved: true }), (err: unknown) => ({ err })),
    new Promise<"waiting">((res) => timer = setTimeout(() => res("waiting"), ms)),
  ]).finally(() => clearTimeout(timer));
  if (outcome === "waiting") assert.fail(`${what} still waiting ${ms / 1000} s into the hang`);
  assert.ok("err" in outcome, `${what} resolved against a server that never answers`);
  report(`${what}: failed after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return outcome.err;
}

function assertTimedOut(err: unknown, seconds: number): void {
  assert.ok(err instanceof BrokerConnectionError, `not a BrokerConnectionError: ${err}`);
  assert.match(err.message, new RegExp(`no reply within ${seconds} s \\(Command timed out\\)`));
  assert.match(err.message, /socket_timeout/);
  assert.equal(err.transient, true);
}

Deno.test({
  name: "redis: a hung single server fails the general connection's commands after " +
    "?socket_timeout= (queue declaration, result deletion)",
  ignore: WITHOUT_REDIS,
  // The commands left unanswered are dropped with the connections.
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const prefix = uniquePrefix("cmd-timeout");
  const query = `?global_keyprefix=${encodeURIComponent(prefix)}&socket_timeout=1`;
  const { proxy, url } = LossyProxy.before(`${REDIS_URL}${query}`);
  const broker = await openRedisBroker(url);
  const backend = await openRedisBackend(url);
  try {
    await broker.declareQueue(uniqueQueue("cmd-timeout"));
    await backend.forget(crypto.randomUUID());
    proxy.holdReplies();
    assertDropped(await failure(broker.declareQueue(uniqueQueue("t")), 10_000, "declareQueue"));
    assertDropped(await failure(backend.forget(crypto.randomUUID()), 10_000, "forget"));
  } finally {
    proxy.cut();
    await Promise.allSettled([broker.close(), backend.close()]);
    proxy.close();
    await deleteKeys(prefix);
  }
});

/** A single server's connection dropped for want of a reply within 1 s (`socket_timeout=1`). */
function assertDropped(err: unknown): void {
  assert.ok(err instanceof BrokerConnectionError, `not a BrokerConnectionError: ${err}`);
  assert.match(err.message, /sent no reply for 1000 ms/);
  assert.equal(err.transient, true);
}

/** Stop a private server without closing its sockets: it hangs. */
function hang(p: RedisProcess): void {
  p.child.kill("SIGSTOP");
}

/** Redis sentinel: a hung master fails publishes and result reads after ?socket_timeout=. */
async function sentinelHung(): Promise<void> {
  const servers = await privateServers("sentinel-hung", async (s) => {
    await s.redis(0);
    await s.sentinel(1, "m1", 0);
  });
  const url = `sentinel://127.0.0.1:${servers.base + 1}/0?master_name=m1&socket_timeout=1` +
    "&failover_wait=2";
  const broker = await openRedisBroker(url);
  const backend = await openRedisBackend(url);
  try {
    const q = uniqueQueue("sentinel-hung");
    await broker.publish(message("before"), { routingKey: q });
    assert.equal(await backend.get(crypto.randomUUID()), null);
    hang(servers.processes[0]);
    // Failed commands through Sentinel are sent again for ?failover_wait= (a failover): then
    // given up. Both wait at once: each on its own connection.
    const [published, got] = await Promise.all([
      failure(broker.publish(message("x"), { routingKey: q }), 30_000, "publish"),
      failure(backend.get(crypto.randomUUID()), 30_000, "get"),
    ]);
    assertTimedOut(published, 1);
    assertTimedOut(got, 1);
  } finally {
    await Promise.allSettled([broker.close(), backend.close()]);
    await servers.stop();
  }
}

/** Wait until every Sentinel of a {@link failoverSet} names the replica as the master. */
function replicaPromoted(base: number): Promise<void> {
  return waitUntil("every Sentinel to name the replica", async () => {
    for (let i = 2; i <= 4; i++) {
      const m = await command(base + i, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "m1") as string[];
      if (m[1] !== String(base + 1)) return false;
    }
    return true;
  }, 30_000);
}

/** Redis sentinel: after a hung master's failover, commands go to the promoted replica. */
async function sentinelHungFailover(): Promise<void> {
  const servers = await failoverSet("sentinel-hung-failover");
  const base = servers.base;
  const url = `sentinel://127.0.0.1:${base + 2};sentinel://127.0.0.1:${base + 3}/0` +
    "?master_name=m1&socket_timeout=1";
  const broker = await openRedisBroker(url);
  try {
    const q = uniqueQueue("sentinel-failover");
    await broker.publish(message("before"), { routingKey: q });
    hang(servers.processes[0]);
    const hungAt = Date.now();
    // The master does not close its connections: without a reconnect the broker stays on it.
    let sent = false;
    while (!sent && Date.now() - hungAt < 60_000) {
      sent = await broker.publish(message("after"), { routingKey: q }).then(
        () => true,
        () => false,
      );
    }
    assert.ok(sent, "a publish still failed 60 s after the master hung");
    report(`publish after a hung master: went through ${(Date.now() - hungAt) / 1000} s after`);
    // The Sentinel that answered the reconnect may be ahead of the others.
    await replicaPromoted(base);
    // "before" (replicated) and "after" (at least once: a publish retried in a failover may
    // arrive twice).
    assert.ok(Number(await command(base + 1, "LLEN", q)) >= 2, "the publish reached it");
  } finally {
    await broker.close().catch(() => {});
    await servers.stop();
  }
}

/** Redis sentinel: a result waited for while the master hangs and fails over reaches the client. */
async function sentinelHungResult(): Promise<void> {
  const servers = await failoverSet("sentinel-hung-result");
  const base = servers.base;
  const url = `sentinel://127.0.0.1:${base + 2};sentinel://127.0.0.1:${base + 3}/0` +
    "?master_name=m1&socket_timeout=1";
  const waiting = await openRedisBackend(url);
  let storer: Awaited<ReturnType<typeof openRedisBackend>> | null = null;
  try {
    const id = crypto.randomUUID();
    const got = waiting.waitFor(id, AbortSignal.timeout(60_000));
    got.catch(() => {});
    /** Whether the wait's channel is subscribed to on the server at `port`. */
    const subscribedOn = (port: number) => async () => {
      const [, n] = await command(port, "PUBSUB", "NUMSUB", `celery-task-meta-${id}`) as [
        string,
        number,
      ];
      return n === 1;
    };
    await waitUntil("the subscription", subscribedOn(base), 10_000);
    hang(servers.processes[0]);
    await replicaPromoted(base);
    // An idle subscription sends nothing: without a PING it stays on the hung master. (Without
    // the PINGs the result still came, 59.9 s after its store, and the case passed: the result
    // alone does not show where the subscription is.)
    await waitUntil("the subscription on the promoted replica", subscribedOn(base + 1), 30_000);
    storer = await openRedisBackend(url);
    const meta = encodeResultMeta({
      taskId: id,
      status: "SUCCESS",
      result: 7,
      dateDone: new Date(),
    });
    const storedAt = Date.now();
    await storer.store([{ taskId: id, status: "SUCCESS", meta }]);
    const result = await got;
    assert.equal(result.result, 7);
    report(
      `result after a hung master's failover: ${(Date.now() - storedAt) / 1000} s after its store`,
    );
  } finally {
    await Promise.allSettled([waiting.close(), storer?.close()]);
    await servers.stop();
  }
}

/** Redis cluster: a hung master fails the publishes to its slots after ?socket_timeout=. */
async function clusterHung(): Promise<void> {
  const servers = await privateServers("cluster-hung", (s) => s.cluster({ nodes: 3 }));
  const base = servers.base;
  const url = `redis+cluster://127.0.0.1:${base},127.0.0.1:${base + 1}` +
    "?socket_timeout=1&failover_wait=2";
  const broker = await openRedisClusterBroker(url);
  try {
    const q = uniqueQueue("cluster-hung");
    await broker.publish(message("before"), { routingKey: q });
    const slot = Number(await command(base, "CLUSTER", "KEYSLOT", queueTag(q)));
    const ranges = await command(base, "CLUSTER", "SLOTS") as [number, number, [string, number]][];
    const port = Number(ranges.find(([from, to]) => slot >= from && slot <= to)![2][1]);
    hang(servers.processes.find((p) => p.port === port)!);
    // The Cluster broker's publish is a batch of one: a BatchPublishError ("unknown") around it.
    const err = await failure(broker.publish(message("x"), { routingKey: q }), 30_000, "publish");
    assert.ok(err instanceof BatchPublishError, `not a BatchPublishError: ${err}`);
    assert.deepEqual(err.outcomes, ["unknown"]);
    assertTimedOut(err.cause, 1);
  } finally {
    await broker.close().catch(() => {});
    await servers.stop();
  }
}

Deno.test({
  name: "redis sentinel and cluster, hung masters (4 cases at once): publishes and result reads " +
    "fail after ?socket_timeout=; after a failover commands and a waited-for result reach the " +
    "promoted replica",
  ignore: WITHOUT_REDIS,
  // The commands left unanswered are dropped with the connections.
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  // Each case has servers of its own and waits on its own timeouts and failover: they run at once.
  const cases: [string, () => Promise<void>][] = [
    [
      "redis sentinel: a hung master fails publishes and result reads after ?socket_timeout=",
      sentinelHung,
    ],
    [
      "redis sentinel: after a hung master's failover, commands go to the promoted replica",
      sentinelHungFailover,
    ],
    [
      "redis sentinel: a result waited for while the master hangs and fails over reaches the client",
      sentinelHungResult,
    ],
    [
      "redis cluster: a hung master fails the publishes to its slots after ?socket_timeout=",
      clusterHung,
    ],
  ];
  const outcomes = await Promise.allSettled(cases.map(([, run]) => run()));
  outcomes.forEach((o, i) => {
    if (o.status === "rejected") {
      throw new Error(`the case "${cases[i][0]}" failed`, { cause: o.reason });
    }
  });
});
