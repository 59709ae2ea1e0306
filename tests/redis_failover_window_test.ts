/**
 * How long commands through Redis Sentinel (and on a Cluster) are sent again
 * while a failover runs, and what a process says about it: a window that
 * covers a failover with Sentinel's default timing (`down-after-milliseconds`
 * 30 s), one warning when the master goes, one line naming the new master,
 * and no ioredis wording ("Connection is closed.", "Reached the max retries
 * per request limit", "All sentinels are unreachable. Retrying from
 * scratch"). The failover itself runs on private servers (failoverSet:
 * Sentinels with `down-after-milliseconds 1000`).
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { openRedisBackend } from "../src/backend/redis.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { openRedisClusterBroker, queueTag } from "../src/broker/redis_cluster.ts";
import { guardRedis, noteFailure, realFailure } from "../src/broker/redis_guard.ts";
import { failoverWaitOf, parseRedisUrl } from "../src/broker/redis_url.ts";
import { message } from "./broker_conformance.ts";
import {
  command,
  failoverSet,
  failoverUrl,
  privateServers,
  waitUntil,
} from "./helpers/redis_servers.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const wait = (url: string) => failoverWaitOf(parseRedisUrl(url), url);

Deno.test("failover window: 60 s by default through Sentinel and on a Cluster, none on one server", () => {
  // Sentinel's default down-after-milliseconds is 30 s, and the election takes a few more: the
  // window was 15 s, so a publish during a default failover failed half-way through it.
  assert.equal(wait("sentinel://10.0.0.1:26379/0?master_name=m"), 60_000);
  assert.equal(wait("redis+cluster://10.0.0.1:7000,10.0.0.2:7000"), 60_000);
  assert.equal(wait("redis://127.0.0.1:6379/0"), 0);
  assert.equal(wait("sentinel://10.0.0.1:26379/0?master_name=m&failover_wait=2.5"), 2_500);
  assert.equal(wait("sentinel://10.0.0.1:26379/0?master_name=m&failover_wait=0"), 0);
  assert.throws(
    () => wait("sentinel://:pw@10.0.0.1:26379/0?master_name=m&failover_wait=soon"),
    (err: unknown) =>
      err instanceof TypeError && /failover_wait "soon"/.test(err.message) &&
      /\?failover_wait=60/.test(err.message) && !err.message.includes(":pw@"),
  );
});

Deno.test("failover window: commands are sent again for ?failover_wait=, then fail in plain words", async () => {
  const url = "sentinel://127.0.0.1:1/0?master_name=window&failover_wait=0.6";
  let calls = 0;
  const started = Date.now();
  const err = await guardRedis(url, () => {
    calls++;
    const e = new Error("Reached the max retries per request limit (which is 3). Refer to ...");
    e.name = "MaxRetriesPerRequestError";
    return Promise.reject(e);
  }).catch((e) => e);
  const took = Date.now() - started;
  assert.ok(err instanceof BrokerConnectionError, String(err));
  assert.ok(took >= 600, `gave up after ${took} ms, before the window ended`);
  // Sent again, 250 ms apart at least: at most 4 sends fit in 0.6 s, however loaded the host.
  assert.ok(calls >= 2 && calls <= 4, `sent ${calls} times`);

  // What the connection last said replaces ioredis' "max retries" wording.
  noteFailure(url, new Error("Connection is closed."));
  noteFailure(url, new Error("connect ECONNREFUSED 127.0.0.1:6390"));
  noteFailure(url, new Error("All sentinels are unreachable. Retrying from scratch after 200ms."));
  const said = await guardRedis(url, () => {
    const e = new Error("Reached the max retries per request limit (which is 3). Refer to ...");
    e.name = "MaxRetriesPerRequestError";
    return Promise.reject(e);
  }).catch((e) => e);
  assert.ok(said instanceof BrokerConnectionError);
  assert.match(said.message, /connection refused: nothing listens on 127\.0\.0\.1:6390/);
  assert.doesNotMatch(said.message, /max retries|maxRetriesPerRequest/);

  // A command that succeeds within the window returns its value.
  let n = 0;
  const value = await guardRedis(
    url,
    () => ++n < 2 ? Promise.reject(new Error("connect ECONNREFUSED x")) : Promise.resolve(7),
  );
  assert.equal(value, 7);
});

Deno.test("failover window: ioredis' max retries wording is replaced even with no error known", () => {
  // A URL whose connections said nothing (a Cluster's node connections do not note their errors).
  const url = `sentinel://127.0.0.1:1/0?master_name=unsaid-${crypto.randomUUID()}`;
  const gaveUp = new Error("Reached the max retries per request limit (which is 3). Refer to ...");
  gaveUp.name = "MaxRetriesPerRequestError";
  const said = realFailure(url, gaveUp) as Error;
  assert.equal(said.message, "the connection was lost and its reconnect attempts failed");
  assert.equal(said.cause, gaveUp);
  noteFailure(url, new Error("connect ECONNREFUSED 127.0.0.1:6391"));
  assert.equal(
    (realFailure(url, gaveUp) as Error).message,
    "the connection was lost: connect ECONNREFUSED 127.0.0.1:6391",
  );
  // Any other error is reported as it is.
  const other = new Error("WRONGTYPE Operation against a key holding the wrong kind of value");
  assert.equal(realFailure(url, other), other);
});

Deno.test({
  name:
    "failover window: a Sentinel failover is told once: master unreachable, then the new master",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const servers = await failoverSet("failover-log");
  const base = servers.base;
  const url = failoverUrl(base);
  const records = await captureLogs("info");
  const broker = await openRedisBroker(url);
  const backend = await openRedisBackend(url);
  try {
    const queue = `failover-log-${crypto.randomUUID().slice(0, 8)}`;
    await broker.publish(message("before"), { routingKey: queue });
    await backend.get(crypto.randomUUID());
    await servers.processes[0]!.kill();
    // Sent while the master is down: rides the failover out.
    await broker.publish(message("during"), { routingKey: queue });
    assert.equal(await backend.get(crypto.randomUUID()), null);
    await waitUntil(
      "the replica's promotion",
      async () =>
        (await command(base + 2, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "m1") as string[])[1] ===
          String(base + 1),
      30_000,
    );
    assert.equal(await command(base + 1, "LLEN", queue), 2);
    const lines = records.map(logLine);
    const said = lines.join("\n");
    assert.equal(
      lines.filter((l) => /Redis master m1 at 127\.0\.0\.1:\d+ is unreachable/.test(l)).length,
      1,
      said,
    );
    assert.match(
      said,
      new RegExp(
        `warning Redis master m1 is now 127\\.0\\.0\\.1:${base + 1} ` +
          `\\(was 127\\.0\\.0\\.1:${base}\\)`,
      ),
    );
    assert.equal(lines.filter((l) => / is now /.test(l)).length, 1, said);
    assert.doesNotMatch(said, /Connection is closed|max retries|All sentinels are unreachable/);
  } finally {
    await reset();
    await Promise.allSettled([broker.close(), backend.close()]);
    await servers.stop();
  }
});

Deno.test({
  name: "failover window: a Cluster master's death and its replica's promotion are told once each",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  // ioredis reports a node's failures as 'node error' events, which were not logged: a master's
  // death and the promotion of its replica went by without a word.
  const servers = await privateServers(
    "failover-log-cluster",
    (s) => s.cluster({ nodes: 6, replicas: 1, args: ["--cluster-node-timeout", "1000"] }),
  );
  const base = servers.base;
  const url = `redis+cluster://127.0.0.1:${base},127.0.0.1:${base + 1}`;
  const records = await captureLogs("info");
  const broker = await openRedisClusterBroker(url);
  try {
    const queue = `failover-log-${crypto.randomUUID().slice(0, 8)}`;
    await broker.publish(message("before"), { routingKey: queue });
    const slot = Number(await command(base, "CLUSTER", "KEYSLOT", queueTag(queue)));
    type Range = [number, number, ...[string, number][]];
    let owners: [string, number][] = [];
    await waitUntil("the slot's replica to be known", async () => {
      const slots = await command(base, "CLUSTER", "SLOTS") as Range[];
      owners = slots.find(([from, to]) => slot >= from && slot <= to)!.slice(2) as [
        string,
        number,
      ][];
      return owners.length === 2;
    }, 20_000);
    const [[, victim], [, replica]] = owners;
    await servers.processes.find((p) => p.port === Number(victim))!.kill();
    // Sent while its master is down: rides the failover out.
    await broker.publish(message("during"), { routingKey: queue });
    assert.equal(await broker.queueDepth(queue), 2);
    // Said once a second slot refresh agrees (asked for 1 s after the first).
    await waitUntil(
      "the new masters to be said",
      () => Promise.resolve(records.map(logLine).some((l) => / masters are now /.test(l))),
      20_000,
    );
    const lines = records.map(logLine);
    const said = lines.join("\n");
    assert.equal(
      lines.filter((l) => l.includes(`node 127.0.0.1:${victim} is unreachable`)).length,
      1,
      said,
    );
    const changes = lines.filter((l) => / masters are now /.test(l));
    assert.equal(changes.length, 1, said);
    assert.match(
      changes[0]!,
      new RegExp(`now .*127\\.0\\.0\\.1:${replica}.* \\(were .*127\\.0\\.0\\.1:${victim}`),
    );
  } finally {
    await reset();
    await broker.close().catch(() => {});
    await servers.stop();
  }
});

Deno.test({
  name: "failover window: a worker waiting for messages names the connection's error, not ioredis'",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  // The wait for messages (a BLMOVE on a connection of its own) did not go through guardRedis:
  // its warning said "Reached the max retries per request limit (which is 3). Refer to ...".
  const servers = await failoverSet("failover-wait");
  const base = servers.base;
  const url = failoverUrl(base);
  const records = await captureLogs("debug");
  const broker = await openRedisBroker(url);
  const stop = new AbortController();
  try {
    const queue = `failover-wait-${crypto.randomUUID().slice(0, 8)}`;
    const taking = (async () => {
      while (!stop.signal.aborted) {
        await broker.take([queue], { max: 1, signal: stop.signal }).catch(() => {});
      }
    })();
    await waitUntil(
      "the wait to block",
      async () => String(await command(base, "CLIENT", "LIST")).includes("cmd=blmove"),
      10_000,
    );
    await servers.processes[0]!.kill();
    const waits = () => records.map(logLine).filter((l) => l.includes("Cannot wait for messages"));
    await waitUntil("a failed wait to be told", () => Promise.resolve(waits().length > 0), 30_000);
    stop.abort();
    await taking;
    const said = waits().join("\n");
    assert.doesNotMatch(said, /max retries|maxRetriesPerRequest/);
    assert.match(said, new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${base}\\b`));
  } finally {
    stop.abort();
    await reset();
    await broker.close().catch(() => {});
    await servers.stop();
  }
});
