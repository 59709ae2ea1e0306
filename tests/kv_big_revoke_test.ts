/**
 * A revoke of many ids on the KV broker (`GroupResult.revoke()` of a big
 * group): the client stored every id (about 10 s for 100,000), then its
 * broadcast was refused, as the KV broker takes messages of 60,000 bytes at
 * most (about 5,000 ids), so running workers were never told. Now only the
 * ids that can be kept are written, and the broadcast goes as several
 * `revoke` requests, each under the limit.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { addRevoked, listRevoked, type RevokedScope } from "../src/broker/kv_revoked.ts";
import { REVOKED_KEPT } from "../src/broker/shared_state.ts";
import { KV_MAX_MESSAGE_BYTES } from "../src/broker/kv_message.ts";
import { revokeParts } from "../src/client/revoke_parts.ts";
import { Worker } from "../src/worker/worker.ts";
import { until } from "./helpers/waits.ts";

/** Ids revoked at once: more than one KV message holds. */
const IDS = 12_000;

/** A scope whose atomic commits record the ids they write under `["t", "revoked", id]`. */
function countingScope(kv: Deno.Kv, written: Set<string>): RevokedScope {
  const counting = new Proxy(kv, {
    get(target, prop) {
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const set = op.set.bind(op);
          op.set = (key, value, options) => {
            if (key[1] === "revoked") written.add(String(key[2]));
            return set(key, value, options);
          };
          return op;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { kv: counting, k: (...parts) => ["t", ...parts] };
}

Deno.test("kv revoked: of more ids than kept, only the kept ones are written", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const written = new Set<string>();
    const scope = countingScope(kv, written);
    const expiresAt = new Date(Date.now() + 3_600_000);
    const ids = Array.from({ length: 1000 }, (_, i) => `w-${i}`);
    await addRevoked(scope, ids.map((id) => ({ id, expiresAt })), { kept: 100 });
    assert.equal(
      written.size,
      100,
      "only the 100 kept are written (before: all 1,000, then trimmed)",
    );
    assert.deepEqual(
      (await listRevoked(scope)).map((e) => e.id).sort(),
      ids.slice(-100).sort(),
      "the last 100 of the list",
    );
  } finally {
    kv.close();
  }
});

Deno.test(`kv revoke of ${IDS} ids: split into requests that fit, a running worker skips them all`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-big-revoke-" });
  const url = `kv://${dir}/b.sqlite`;
  const app = new Celery({ broker: url, backend: url });
  app.task("t.add", (a: number, b: number) => a + b);
  const client = new Celery({ broker: url, backend: url });
  const worker = new Worker({ app, pool: "inline", hostname: "big-revoke@%h" });
  await worker.start();
  try {
    const ids = Array.from({ length: IDS }, () => crypto.randomUUID());
    const args = { terminate: false, signal: "SIGTERM", celeriac_stored: true };
    const parts = revokeParts(ids, args, null, KV_MAX_MESSAGE_BYTES).length;
    assert.ok(parts >= 3, `${parts} parts`);
    // Queued: held by the worker until their countdown; in the first, a middle and the last part.
    // A revoked ETA task is REVOKED as the revoke arrives: the countdown only has to outlast the
    // revoke (a 3 s one ran first in CI under load, result 3).
    const held = [ids[0], ids[IDS / 2], ids[IDS - 1]];
    const results = await Promise.all(
      held.map((id) => client.sendTask("t.add", [1, 2], { taskId: id, countdown: 120 })),
    );
    await until("the worker holds the three tasks", async () => {
      const scheduled = await client.control.inspect({ timeout: 0.5 }).scheduled();
      return Object.values(scheduled ?? {}).flat().length === held.length;
    }, 10_000);
    const replies = await client.control.revoke(ids, { reply: true, timeout: 5, limit: 1 });
    assert.equal(replies.length, parts, "a reply to each part");
    for (const r of replies) assert.match(r[worker.hostname]?.ok ?? "", /flagged as revoked/);
    for (const r of results) {
      assert.equal(
        await r.get({ timeout: 10_000 }).then(() => null, (e) => e.excType),
        "TaskRevokedError",
      );
    }
    // One sent after, from the last part: the worker was told every part.
    const late = await client.sendTask("t.add", [1, 2], { taskId: ids[IDS - 2] });
    assert.equal(
      await late.get({ timeout: 10_000 }).then(() => null, (e) => e.excType),
      "TaskRevokedError",
    );
    const stored = await (await client.broker()).listRevoked();
    assert.equal(stored.length, IDS);
    assert.ok(stored.length <= REVOKED_KEPT);
  } finally {
    await worker.stop();
    await Promise.all([app.close(), client.close()]);
    await Deno.remove(dir, { recursive: true });
  }
});
