/**
 * Redis Cluster with a master down and no replica to take over
 * (`cluster-require-full-coverage no`: the other slots keep working), on
 * three private cluster nodes: a take over several queues, and a worker
 * consuming them, go on with the queues whose masters are up; once the
 * master is back its queue's messages run, each once.
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { BrokerConnectionError, Celery } from "../mod.ts";
import { openRedisClusterBroker, queueTag } from "../src/broker/redis_cluster.ts";
import { isConnectionFailure } from "../src/broker/redis_failures.ts";
import { message } from "./broker_conformance.ts";
import { interopWorker } from "./helpers/interop.ts";
import {
  command,
  privateServers,
  type RedisProcess,
  startRedis,
  waitUntil,
} from "./helpers/redis_servers.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const NODE_ARGS = ["--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no"];
const servers = WITHOUT_REDIS ? null : await privateServers(
  "cluster-partial",
  (s) => s.cluster({ nodes: 3, replicas: 0, args: NODE_ARGS }),
);
const base = servers?.base ?? 0;
const nodes: RedisProcess[] = servers?.processes ?? [];
const url = `redis+cluster://127.0.0.1:${base},127.0.0.1:${base + 1},127.0.0.1:${base + 2}`;

/** The port of the master serving a hash tag's slot. */
async function masterOfTag(tag: string): Promise<number> {
  const slot = Number(await command(base, "CLUSTER", "KEYSLOT", tag));
  const ranges = await command(base, "CLUSTER", "SLOTS") as [number, number, [string, number]][];
  return Number(ranges.find(([from, to]) => slot >= from && slot <= to)![2][1]);
}

/**
 * Three queues on three masters, the last one's master not the one of
 * `{celeriac}` (bookkeeping that belongs to no queue), with its port.
 */
async function spreadQueues(): Promise<{ queues: string[]; victim: number }> {
  const global = await masterOfTag("{celeriac}");
  const byMaster = new Map<number, string>();
  while (byMaster.size < 3) {
    const q = `cp-${crypto.randomUUID().slice(0, 6)}`;
    const m = await masterOfTag(queueTag(q));
    if (!byMaster.has(m)) byMaster.set(m, q);
  }
  const victim = [...byMaster.keys()].find((m) => m !== global)!;
  const queues = [...byMaster].filter(([m]) => m !== victim).map(([, q]) => q);
  return { queues: [...queues, byMaster.get(victim)!], victim };
}

/** SIGKILL a master; resolves once another node marks it failing. */
async function killMaster(port: number): Promise<void> {
  await nodes.findLast((x) => x.port === port)!.kill();
  const ask = port === base ? base + 1 : base;
  await waitUntil(
    "the cluster to see the master fail",
    async () => String(await command(ask, "CLUSTER", "NODES")).includes("fail"),
    20_000,
  );
}

/** Start a killed master again (with its cluster config: it takes its slots back). */
async function restartMaster(port: number, extra: string[] = []): Promise<void> {
  const dir = servers!.dir;
  nodes.push(
    await startRedis(port, dir, [
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      `${dir}/nodes-${port}.conf`,
      ...NODE_ARGS,
      ...extra,
    ]),
  );
  await waitUntil(
    "the cluster to be whole again",
    async () => {
      const line = String(await command(port === base ? base + 1 : base, "CLUSTER", "NODES"))
        .split("\n").find((l) => l.includes(`:${port}@`)) ?? "";
      return line.includes("connected") && !line.includes("fail");
    },
    20_000,
  );
}

Deno.test({
  name: "redis cluster: clients opened while a master is down connect",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const { victim } = await spreadQueues();
  await killMaster(victim);
  try {
    // ioredis's ready check asks any node (the dead one a third of the time here): when it
    // met the dead one, connect() never settled although the client became ready.
    const opens = Array.from(
      { length: 10 },
      () => openRedisClusterBroker(url, { signal: AbortSignal.timeout(30_000) }),
    );
    const opened = await Promise.allSettled(opens);
    await Promise.all(opened.map((o) => o.status === "fulfilled" && o.value.close()));
    const failed = opened.filter((o) => o.status === "rejected");
    assert.equal(failed.length, 0, `${failed.length} of 10 left pending or failed`);
  } finally {
    await restartMaster(victim);
  }
});

Deno.test("redis cluster: a command refused after too many redirections is a node outage", () => {
  // ioredis's words when the master of a command's slot is unreachable.
  const err = new Error(
    "Too many Cluster redirections. Last error: ReplyError: MOVED 10157 127.0.0.1:27351",
  );
  assert.equal(isConnectionFailure(err), true);
});

Deno.test({
  name: "redis cluster: with one master down (no replica), a take over several queues and a " +
    "worker go on with the others; its queue's tasks run once when it is back",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const { queues, victim } = await spreadQueues();
  const [qa, qb, qc] = queues;
  const prefix = uniquePrefix("cluster-partial");
  const marker = `${prefix}done`;
  const backend = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const shared = new Redis(REDIS_URL);
  const app = new Celery({ broker: url, backend });
  const broker = await openRedisClusterBroker(url);
  let worker: Awaited<ReturnType<typeof interopWorker>> | null = null;
  try {
    const send = (q: string, n: number) =>
      app.sendTask("tasks.record", [n, marker, 0], { queue: q, ignoreResult: true });
    // Its messages survive the kill in its append-only file.
    await command(victim, "CONFIG", "SET", "appendonly", "yes", "appendfsync", "always");
    await waitUntil("the append-only file to be written", async () => {
      const info = String(await command(victim, "INFO", "persistence"));
      return info.includes("aof_enabled:1") && info.includes("aof_rewrite_in_progress:0") &&
        !info.includes("aof_rewrite_scheduled:1");
    }, 20_000);
    for (let n = 0; n < 3; n++) await send(qc, 100 + n);
    await killMaster(victim);
    // A take over the three queues returns the live queue's messages (it failed with
    // "Too many Cluster redirections" from the dead master's queue).
    await broker.publishMany(
      ["a1", "a2"].map((t) => ({ message: message(t), target: { routingKey: qa } })),
    );
    const got = await broker.take(queues, { max: 10, signal: AbortSignal.timeout(60_000) });
    assert.deepEqual(got.map((d) => d.queue), [qa, qa]);
    await broker.ack(got);
    // A worker started now becomes ready and runs the live queues' tasks.
    for (let n = 0; n < 10; n++) await send(n % 2 ? qb : qa, n);
    worker = await interopWorker({ broker: url, backend }, queues.join(","), [
      "-c",
      "2",
      "--loglevel",
      "DEBUG",
    ]);
    // Until `n` runs are marked, or the wait's error with the worker's last output.
    const runsReach = (what: string, n: number, ms: number) =>
      waitUntil(what, async () => (await shared.llen(marker)) >= n, ms).catch((err) => {
        throw new Error(`${err.message}; worker said:\n${worker!.output.slice(-3000)}`);
      });
    await runsReach("the live queues' 10 tasks to run", 10, 60_000);
    // The master is back: its queue's 3 tasks run, and nothing ran twice.
    await restartMaster(victim, ["--appendonly", "yes"]);
    await runsReach("the dead master's 3 tasks to run", 13, 90_000);
    const runs = await shared.lrange(marker, 0, -1);
    assert.equal(new Set(runs).size, 13);
    assert.equal(runs.length, 13, `ran twice: ${runs.sort()}`);
  } finally {
    await worker?.stop();
    await broker.close();
    await app.close();
    await deleteKeys(prefix);
    shared.disconnect();
  }
});

Deno.test({
  name:
    "redis cluster: a task sent to a queue whose master is down (no replica) fails, not waiting " +
    "for a failover",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const { queues, victim } = await spreadQueues();
  const app = new Celery({ broker: url, backend: null });
  await killMaster(victim);
  try {
    // Before: each of the publish retry policy's 4 tries sent the command again for
    // failover_wait (60 s): pending for 4 minutes.
    const sent = app.sendTask("tasks.record", [0, "unused", 0], { queue: queues[2] });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      sent.then(() => "sent", (err: Error) => err),
      new Promise((res) => timer = setTimeout(() => res("pending after 50 s"), 50_000)),
    ]).finally(() => clearTimeout(timer));
    assert.ok(outcome instanceof BrokerConnectionError, String(outcome));
    assert.match(outcome.message, /master serving the key's slot is unreachable/);
  } finally {
    await app.close();
    await restartMaster(victim);
  }
});

Deno.test({
  name: "redis cluster: with the master of {celeriac} down (no replica), a worker started then " +
    "consumes the queues whose masters are up",
  ignore: WITHOUT_REDIS,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const global = await masterOfTag("{celeriac}");
  const queues: string[] = [];
  const used = new Set([global]);
  while (queues.length < 2) {
    const q = `cg-${crypto.randomUUID().slice(0, 6)}`;
    const m = await masterOfTag(queueTag(q));
    if (used.has(m)) continue;
    used.add(m);
    queues.push(q);
  }
  const prefix = uniquePrefix("cluster-global");
  const marker = `${prefix}done`;
  const backend = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const shared = new Redis(REDIS_URL);
  const app = new Celery({ broker: url, backend });
  let worker: Awaited<ReturnType<typeof interopWorker>> | null = null;
  await killMaster(global);
  try {
    for (let n = 0; n < 10; n++) {
      await app.sendTask("tasks.record", [n, marker, 0], {
        queue: queues[n % 2],
        ignoreResult: true,
      });
    }
    // Before: its start read the revoked ids (under {celeriac}) for up to 300 s, 60 s an attempt,
    // and consumed nothing meanwhile.
    worker = await interopWorker({ broker: url, backend }, queues.join(","), ["-c", "2"]);
    await waitUntil("the 10 tasks to run", async () => (await shared.llen(marker)) >= 10, 50_000)
      .catch((err) => {
        throw new Error(`${err.message}; worker said:\n${worker!.output.slice(-3000)}`);
      });
    assert.match(worker.output, /read revoked ids: no answer yet/);
    // Before: its MULTI/EXEC failed with "Connection is closed." and was sent again for the
    // whole failover wait (60 s), then said only that.
    await assert.rejects(
      app.control.revoke(crypto.randomUUID()),
      (err: Error) =>
        err instanceof BrokerConnectionError &&
        /master serving the key's slot is unreachable/.test(err.message),
    );
  } finally {
    await worker?.stop();
    await app.close();
    await deleteKeys(prefix);
    shared.disconnect();
    await restartMaster(global);
  }
});

Deno.test({ name: "redis cluster partial: stop the cluster", ignore: WITHOUT_REDIS }, async () => {
  await servers?.stop();
});
