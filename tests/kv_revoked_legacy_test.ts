/**
 * KV revoked ids stored by a version before the expiry index (only
 * `["revoked", id]`, no index entry, no count) are counted when revoked
 * again: before, such an id re-revoked with a later expiry was taken as
 * already counted, so the count stayed one under the index per id and the
 * file kept that many ids over the cap for good (review 46, finding 1).
 */

import assert from "node:assert/strict";
import { addRevoked, listRevoked, type RevokedScope } from "../src/broker/kv_revoked.ts";

const NS = "legacy";

function scopeOf(kv: Deno.Kv): RevokedScope {
  return { kv, k: (...parts) => [NS, ...parts] };
}

/** The stored count and the number of index entries it counts. */
async function countAndIndex(kv: Deno.Kv): Promise<{ count: unknown; index: number }> {
  let index = 0;
  for await (const _ of kv.list({ prefix: [NS, "revoked_by_expiry"] })) index++;
  return { count: (await kv.get([NS, "revoked_count"])).value, index };
}

Deno.test("kv revoked: ids stored without an index entry are counted when revoked again", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const scope = scopeOf(kv);
    const base = Date.now() + 3_600_000;
    // As the older version wrote them: the id's entry only.
    for (let i = 0; i < 5; i++) {
      await kv.set([NS, "revoked", `old-${i}`], base + i, { expireIn: 3_600_000 + i });
    }
    const again = Array.from({ length: 5 }, (_, i) => ({
      id: `old-${i}`,
      expiresAt: new Date(base + 1000 + i),
    }));
    // All five within the cap: addRevoked writes only the newest `kept` of what it is given.
    await addRevoked(scope, again, { kept: 5 });
    const first = await countAndIndex(kv);
    assert.equal(first.count, first.index, "the count is the number of index entries");
    assert.equal(first.index, 5);
    assert.deepEqual(
      (await listRevoked(scope)).map((e) => e.id),
      ["old-0", "old-1", "old-2", "old-3", "old-4"],
    );

    const more = Array.from({ length: 8 }, (_, i) => ({
      id: `new-${i}`,
      expiresAt: new Date(base + 2000 + i),
    }));
    await addRevoked(scope, more, { kept: 3 });
    assert.deepEqual(await countAndIndex(kv), { count: 3, index: 3 });
    assert.deepEqual((await listRevoked(scope)).map((e) => e.id), ["new-5", "new-6", "new-7"]);
  } finally {
    kv.close();
  }
});

Deno.test("kv revoked: a count left below zero is read as zero, so the cap holds", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const scope = scopeOf(kv);
    // What an older version left once the ids it undercounted had expired and were trimmed.
    await kv.set([NS, "revoked_count"], -4);
    const base = Date.now() + 3_600_000;
    const some = Array.from({ length: 8 }, (_, i) => ({
      id: `n-${i}`,
      expiresAt: new Date(base + i),
    }));
    await addRevoked(scope, some, { kept: 3 });
    assert.deepEqual(await countAndIndex(kv), { count: 3, index: 3 });
    assert.equal((await listRevoked(scope)).length, 3);
  } finally {
    kv.close();
  }
});

Deno.test("kv revoked: a trim of more expired entries than counted stores 0, not below", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const scope = scopeOf(kv);
    // Expired index entries an older version did not count (count 0).
    const past = Date.now() - 1000;
    for (let i = 0; i < 3; i++) {
      await kv.set([NS, "revoked_by_expiry", past + i, new Uint8Array(8)], `gone-${i}`);
    }
    await addRevoked(scope, [{ id: "live", expiresAt: new Date(Date.now() + 3_600_000) }], {
      kept: 3,
    });
    // The 3 uncounted entries are deleted; the count can't know of them, but stays at 0, not -2.
    assert.deepEqual(await countAndIndex(kv), { count: 0, index: 1 });
  } finally {
    kv.close();
  }
});
