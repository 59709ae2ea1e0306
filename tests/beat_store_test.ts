/** The schedule store (lease, fencing token, compare-and-set of last runs) on Redis and KV. */

import assert from "node:assert/strict";
import { openScheduleStore, type ScheduleStore, type ScheduleStoreOptions } from "../protocol.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { privateServers } from "./helpers/redis_servers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function conformance(a: ScheduleStore, b: ScheduleStore): Promise<void> {
  assert.equal(await a.lease(), null);
  const t1 = await a.acquire("beat-a", 400);
  assert.ok(t1 !== null && t1 >= 1);
  assert.equal(await b.acquire("beat-b", 400), null, "a held lease is refused");
  assert.equal(await a.acquire("beat-a", 400), t1, "renewal keeps the token");
  const info = await b.lease();
  assert.equal(info?.holder, "beat-a");
  assert.equal(info?.token, t1);
  assert.ok(info!.ttlMs > 0 && info!.ttlMs <= 400);

  // Compare-and-set under the lease.
  assert.equal(await a.commitRun("beat-a", t1!, "tick", null, "s1"), "ok");
  assert.equal(await a.commitRun("beat-a", t1!, "tick", null, "s2"), "conflict");
  assert.equal(await a.commitRun("beat-a", t1!, "tick", "s1", "s2"), "ok");
  assert.equal(await b.commitRun("beat-b", t1!, "tick", "s2", "s3"), "lost", "not the holder");
  assert.equal(await a.commitRun("beat-a", t1! + 1, "tick", "s2", "s3"), "lost", "wrong token");
  assert.deepEqual(await b.readRuns(), new Map([["tick", "s2"]]));

  // The lease expires: another beat takes it with a greater token; the old one is fenced off.
  await sleep(550);
  const t2 = await b.acquire("beat-b", 5000);
  assert.ok(t2 !== null && t2 > t1!, `token ${t2} > ${t1}`);
  assert.equal(await a.commitRun("beat-a", t1!, "tick", "s2", "s3"), "lost");
  assert.equal(await a.acquire("beat-a", 400), null);
  assert.equal(await b.commitRun("beat-b", t2!, "tick", "s2", "s3"), "ok");

  // Release hands it over at once; a stale release does nothing.
  await a.release("beat-a", t1!);
  assert.equal((await a.lease())?.holder, "beat-b");
  await b.release("beat-b", t2!);
  assert.equal(await a.lease(), null);
  const t3 = await a.acquire("beat-a", 5000);
  assert.ok(t3! > t2!);
  await a.release("beat-a", t3!);

  // Run-time entries.
  await a.putEntry("x", '{"task":"t","schedule":5}');
  await a.putEntry("y", '{"task":"u","schedule":"1m"}');
  assert.deepEqual([...(await b.readEntries()).keys()].sort(), ["x", "y"]);
  assert.equal(await b.deleteEntry("x"), true);
  assert.equal(await b.deleteEntry("x"), false);
  await a.deleteRun("tick");
  assert.equal((await a.readRuns()).size, 0);
}

/** Open two stores on `url` (two beats), run {@link conformance} on them, close both. */
async function conformanceAt(url: string, options?: ScheduleStoreOptions): Promise<void> {
  const a = await openScheduleStore(url, options);
  const b = await openScheduleStore(url, options);
  try {
    await conformance(a, b);
  } finally {
    await a.close();
    await b.close();
  }
}

Deno.test({
  name: "beat store: lease, fencing token and compare-and-set on Redis",
  ignore: WITHOUT_REDIS,
  async fn() {
    const ns = uniquePrefix("beatstore");
    try {
      await conformanceAt(REDIS_URL, { namespace: ns });
    } finally {
      await deleteKeys(ns);
    }
  },
});

Deno.test("beat store: lease, fencing token and compare-and-set on Deno KV", async () => {
  const dir = await Deno.makeTempDir();
  const url = `kv://${dir}/beat.sqlite`;
  try {
    await conformanceAt(url);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "beat store: an unreachable Redis is a BrokerConnectionError naming the URL",
  async fn() {
    await assert.rejects(
      () => openScheduleStore("redis://127.0.0.1:1/0"),
      (err: Error) => err.name === "BrokerConnectionError" && /127\.0\.0\.1:1/.test(err.message),
    );
  },
});

Deno.test("beat store: amqp:// is refused with what to use instead", async () => {
  await assert.rejects(
    () => openScheduleStore("amqp://guest:guest@127.0.0.1:5672//"),
    /set beatStore to a redis:\/\/ or kv:\/\/ URL/,
  );
});

Deno.test("beat store: works through Redis Sentinel (sentinel:// URL, private servers)", async () => {
  const servers = await privateServers("beat-sentinel", async (s) => {
    await s.redis(0);
    await s.sentinel(1, "beatmaster", 0);
  });
  const base = servers.base;
  const url = `sentinel://127.0.0.1:${base + 1}/0?master_name=beatmaster`;
  try {
    await conformanceAt(url);
  } finally {
    await servers.stop();
  }
});

Deno.test({
  name: "beat store: works on Redis Cluster (redis+cluster:// URL, private 3-master cluster)",
  ignore: WITHOUT_REDIS,
  async fn() {
    const servers = await privateServers("beat-cluster", (s) => s.cluster());
    const base = servers.base;
    try {
      const url = `redis+cluster://127.0.0.1:${base},127.0.0.1:${base + 1}`;
      await conformanceAt(url);
    } finally {
      await servers.stop();
    }
  },
});
