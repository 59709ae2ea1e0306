/**
 * A key of beat's Redis namespace holding the wrong kind of value (`SET
 * celeriac.beat.runs oops`): the store answers, so beat must not call it
 * unreachable and wait for ever; it names the key and the repair, and keeps
 * what can run running.
 */

import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { Beat, Celery } from "../mod.ts";
import { openScheduleStore, PUBLISHER, ScheduleStoreKeyError } from "../protocol.ts";
import { captureLogs } from "./helpers/logs.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function text(r: LogRecord): string {
  return r.message.map((m) => typeof m === "string" ? m : String(m)).join("");
}

/** Wait until `ok()` holds, at most 30 s: generous, so a hang fails at the assertion after it. */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; !ok() && i < 1500; i++) await sleep(20);
}

/** A beat of one config entry every 0.2 s in namespace `ns`; counts its sends. */
function tickApp(ns: string): { app: Celery; sent: () => number } {
  const app = new Celery({
    broker: REDIS_URL,
    backend: null,
    beatNamespace: ns,
    beatSchedule: { tick: { task: "t.tick", schedule: 0.2 } },
  });
  let sent = 0;
  app[PUBLISHER] = () => {
    sent++;
    return Promise.resolve();
  };
  return { app, sent: () => sent };
}

Deno.test({
  name: "beat store wrong type: each key of the wrong type is named by the store",
  ignore: WITHOUT_REDIS,
  async fn() {
    const ns = uniquePrefix("beatwrong");
    const redis = await rawRedis();
    const store = await openScheduleStore(REDIS_URL, { namespace: ns });
    try {
      await redis.set(ns + "runs", "oops");
      const runs = await store.readRuns().catch((e) => e);
      assert.ok(runs instanceof ScheduleStoreKeyError, String(runs));
      assert.equal(runs.key, ns + "runs");
      assert.equal(runs.role, "runs");
      assert.match(runs.message, new RegExp(`DEL ${ns}runs`));
      await redis.del(ns + "runs");
      await redis.hset(ns + "lease", "a", "b");
      const lease = await store.acquire("beat-a", 5000).catch((e) => e);
      assert.equal(lease?.role, "lease", String(lease));
      await redis.del(ns + "lease");
      await redis.set(ns + "fence", "not-a-number");
      const fence = await store.acquire("beat-a", 5000).catch((e) => e);
      assert.equal(fence?.role, "fence", String(fence));
      assert.match(fence.message, /"not-a-number"/);
    } finally {
      await store.close();
      await redis.quit();
      await deleteKeys(ns);
    }
  },
});

Deno.test({
  name: "beat store wrong type: a runs key of the wrong type is named, not 'unreachable'",
  ignore: WITHOUT_REDIS,
  async fn() {
    const logs = await captureLogs("info");
    const ns = uniquePrefix("beatwrong");
    const redis = await rawRedis();
    await redis.set(ns + "runs", "oops");
    const { app, sent } = tickApp(ns);
    const beat = new Beat({ app, leaseTime: 3, maxInterval: 0.1 });
    try {
      await beat.start();
      await until(() => logs.some((r) => r.level === "error"));
      const errors = logs.filter((r) => r.level === "error").map(text);
      assert.equal(errors.length, 1, errors.join(" | "));
      assert.doesNotMatch(errors[0], /unreachable/);
      assert.match(errors[0], new RegExp(`key ${ns}runs holds a string.*DEL ${ns}runs`));
      assert.equal(sent(), 0, "nothing is sent without a record of the run");
      await redis.del(ns + "runs");
      await until(() => sent() >= 2);
      assert.ok(sent() >= 2, `sent ${sent()} once the key was deleted`);
      assert.ok(logs.some((r) => /key repaired/.test(text(r))), "the repair is logged");
    } finally {
      await beat.stop();
      await app.close();
      await redis.quit();
      await deleteKeys(ns);
      await reset();
    }
  },
});

Deno.test({
  name: "beat store wrong type: the config entries run while the run-time entries' key is wrong",
  ignore: WITHOUT_REDIS,
  async fn() {
    const logs = await captureLogs("info");
    const ns = uniquePrefix("beatwrong");
    const redis = await rawRedis();
    await redis.set(ns + "entries", "oops");
    const { app, sent } = tickApp(ns);
    const beat = new Beat({ app, leaseTime: 3, maxInterval: 0.1 });
    try {
      await beat.start();
      await until(() => sent() >= 2);
      assert.ok(sent() >= 2, `sent ${sent()}: the config entry stopped too`);
      const errors = logs.filter((r) => r.level === "error").map(text);
      assert.equal(errors.length, 1, errors.join(" | "));
      assert.match(errors[0], new RegExp(`key ${ns}entries holds a string.*DEL ${ns}entries`));
    } finally {
      await beat.stop();
      await app.close();
      await redis.quit();
      await deleteKeys(ns);
      await reset();
    }
  },
});
