/**
 * The schedule store facing state no beat wrote: a lease that cannot be read
 * or never expires is taken over (and said), not waited on for ever.
 */

import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { Beat, Celery, PeriodicTasks } from "../mod.ts";
import { type BrokenLease, openScheduleStore, PUBLISHER } from "../protocol.ts";
import { withBeatOnKey } from "./helpers/beat_store.ts";
import { captureLogs } from "./helpers/logs.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function text(r: LogRecord): string {
  return r.message.map((m) => typeof m === "string" ? m : String(m)).join("");
}

/** Count what `app` sends (its publisher replaced: nothing reaches a broker); returns the count so far. */
function countSends(app: Celery): () => number {
  let sent = 0;
  app[PUBLISHER] = () => {
    sent++;
    return Promise.resolve();
  };
  return () => sent;
}

/** Wait until `ok()` holds, at most 30 s: generous, so a hang fails at the assertion after it. */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; !ok() && i < 1500; i++) await sleep(20);
}

Deno.test({
  name: "beat store faults: a Redis lease unreadable or without expiry is taken over and reported",
  ignore: WITHOUT_REDIS,
  async fn() {
    const ns = uniquePrefix("beatfault");
    const redis = await rawRedis();
    const store = await openScheduleStore(REDIS_URL, { namespace: ns });
    const found: BrokenLease[] = [];
    try {
      await redis.set(ns + "lease", "garbage-no-newline");
      const t1 = await store.acquire("beat-a", 5000, (b) => found.push(b));
      assert.ok(t1 !== null, "an unreadable lease counts as free");
      assert.deepEqual(found.map((b) => [b.key, b.value]), [[ns + "lease", "garbage-no-newline"]]);
      assert.ok((await redis.pttl(ns + "lease")) > 0, "the lease taken over expires");

      // A well-formed lease whose TTL was lost (PERSIST, a restore without TTLs).
      await redis.persist(ns + "lease");
      const t2 = await store.acquire("beat-b", 5000, (b) => found.push(b));
      assert.ok(t2 !== null && t2 > t1, `token ${t2} > ${t1}`);
      assert.equal(found[1].why, "it has no expiry");
      assert.equal((await store.lease())?.holder, "beat-b");

      // A live lease is still refused, and nothing is reported.
      assert.equal(await store.acquire("beat-a", 5000, (b) => found.push(b)), null);
      assert.equal(found.length, 2);
    } finally {
      await store.close();
      await redis.quit();
      await deleteKeys(ns);
    }
  },
});

Deno.test("beat store faults: a KV lease record no beat wrote is taken over and reported", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/beat.sqlite`;
  const store = await openScheduleStore(`kv://${path}`, { namespace: "faults." });
  const kv = await Deno.openKv(path);
  const found: BrokenLease[] = [];
  try {
    const key = ["celeriac", "faults.", "lease"];
    // Expiring in ~30,000 years: never, in practice (no lease time goes past 24.8 days).
    await kv.set(key, { holder: "ghost", token: 7, expiresAt: 1e15 });
    const t1 = await store.acquire("beat-a", 5000, (b) => found.push(b));
    assert.ok(t1 !== null && t1 > 7, `token ${t1} > the record's 7`);
    assert.equal(found.length, 1);
    assert.match(found[0].value, /ghost/);
    await kv.set(key, "garbage");
    assert.ok((await store.acquire("beat-b", 5000, (b) => found.push(b)))! > t1!);
    assert.equal(found.length, 2);
    assert.equal(await store.acquire("beat-a", 5000, (b) => found.push(b)), null);
    assert.equal(found.length, 2);
  } finally {
    kv.close();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "beat store faults: a beat takes over a corrupt lease with a WARN, and sends",
  ignore: WITHOUT_REDIS,
  fn: () =>
    // It stood by for ever without a word: the lease never expired.
    withBeatOnKey(
      "lease",
      "garbage-no-newline",
      { label: "beatfault", maxInterval: 0.2 },
      async (b) => {
        // Generous: a hang (the old behaviour) fails here instead of at the runner's timeout.
        await until(() => b.sent() >= 2);
        assert.ok(b.sent() >= 2, `sent ${b.sent()}, the beat stood by`);
        assert.ok(b.beat.isLeader);
        const warn = b.logs.find((r) => r.level === "warning" && /took it over/.test(text(r)));
        assert.ok(warn, "the takeover is logged");
        assert.match(text(warn), /garbage-no-newline/);
      },
    ),
});

Deno.test("beat store faults: a last run recorded an hour ahead is taken as now, with a WARN", async () => {
  // What a former leader with a fast clock writes: the entry stayed silent until the hour passed.
  const logs = await captureLogs("info");
  const dir = await Deno.makeTempDir();
  const path = `${dir}/beat.sqlite`;
  const kv = await Deno.openKv(path);
  const hourAhead = new Date(Date.now() + 3_600_000).toISOString();
  await kv.set(
    ["celeriac", "celeriac.beat.", "runs", "tick"],
    JSON.stringify({ lastRunAt: hourAhead, totalRunCount: 5 }),
  );
  kv.close();
  const app = new Celery({
    broker: `kv://${path}`,
    beatSchedule: { tick: { task: "t.tick", schedule: 0.2 } },
  });
  const sent = countSends(app);
  const beat = new Beat({ app, leaseTime: 3, maxInterval: 0.2 });
  try {
    await beat.start();
    await until(() => sent() >= 2);
    assert.ok(sent() >= 2, `sent ${sent()}: the entry waited for its run an hour ahead`);
    const warn = logs.find((r) => r.level === "warning" && /taken as now/.test(text(r)));
    assert.ok(warn, "the correction is logged");
    assert.match(text(warn), new RegExp(hourAhead.replace(/\./g, "\\.")));
  } finally {
    await beat.stop();
    await app.close();
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("beat store faults: an entry whose stored JSON is corrupt keeps its last run", async () => {
  // It was forgotten as "no longer in the schedule": once repaired, it started from scratch.
  const dir = await Deno.makeTempDir();
  const broker = `kv://${dir}/beat.sqlite`;
  const app = new Celery({ broker });
  const sent = countSends(app);
  const periodic = new PeriodicTasks(app);
  try {
    const store = await periodic.store();
    await periodic.add("stored", { task: "t.stored", schedule: 0.2 });
    const first = new Beat({ app, leaseTime: 3, maxInterval: 0.1 });
    await first.start();
    await until(() => sent() >= 2);
    await first.stop();
    const before = (await store.readRuns()).get("stored");
    assert.ok(before, "the entry ran");
    await store.putEntry("stored", "{not json");
    const second = new Beat({ app, leaseTime: 3, maxInterval: 0.1 });
    await second.start();
    const stop = sent();
    // Several ticks of the leader, each of which used to forget the run.
    await until(() => second.isLeader);
    await sleep(500);
    await second.stop();
    assert.equal(sent(), stop, "the corrupt entry is not sent");
    assert.equal((await store.readRuns()).get("stored"), before, "its last run is kept");
  } finally {
    await periodic.close();
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});
