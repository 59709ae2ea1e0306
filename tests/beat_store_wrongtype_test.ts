/**
 * A key of beat's Redis namespace holding the wrong kind of value (`SET
 * celeriac.beat.runs oops`): the store answers, so beat must not call it
 * unreachable and wait for ever; it names the key and the repair, and keeps
 * what can run running.
 */

import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { openScheduleStore, ScheduleStoreKeyError } from "../protocol.ts";
import { withBeatOnKey } from "./helpers/beat_store.ts";
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
  fn: () =>
    withBeatOnKey("runs", "oops", { label: "beatwrong", maxInterval: 0.1 }, async (b) => {
      await until(() => b.logs.some((r) => r.level === "error"));
      const errors = b.logs.filter((r) => r.level === "error").map(text);
      assert.equal(errors.length, 1, errors.join(" | "));
      assert.doesNotMatch(errors[0], /unreachable/);
      assert.match(errors[0], new RegExp(`key ${b.ns}runs holds a string.*DEL ${b.ns}runs`));
      assert.equal(b.sent(), 0, "nothing is sent without a record of the run");
      await b.redis.del(b.ns + "runs");
      await until(() => b.sent() >= 2);
      assert.ok(b.sent() >= 2, `sent ${b.sent()} once the key was deleted`);
      assert.ok(b.logs.some((r) => /key repaired/.test(text(r))), "the repair is logged");
    }),
});

Deno.test({
  name: "beat store wrong type: the config entries run while the run-time entries' key is wrong",
  ignore: WITHOUT_REDIS,
  fn: () =>
    withBeatOnKey("entries", "oops", { label: "beatwrong", maxInterval: 0.1 }, async (b) => {
      await until(() => b.sent() >= 2);
      assert.ok(b.sent() >= 2, `sent ${b.sent()}: the config entry stopped too`);
      const errors = b.logs.filter((r) => r.level === "error").map(text);
      assert.equal(errors.length, 1, errors.join(" | "));
      assert.match(errors[0], new RegExp(`key ${b.ns}entries holds a string.*DEL ${b.ns}entries`));
    }),
});
