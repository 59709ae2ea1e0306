/**
 * A spoiled chord's body FAILURE too long for one Deno KV value, claimed by
 * two members at once: only the claim that wins writes the FAILURE's head
 * (the value that names its parts), and no parts are left behind that the
 * head does not name. Before (77b739d8) every member that read the chord
 * spoiled stored the long FAILURE whole, head included, ahead of its claim:
 * a member that then lost the claim had written it too.
 */

import assert from "node:assert/strict";
import { openKvBackend } from "../src/backend/kv.ts";
import { KV_VALUE_BYTES, type StoredResult } from "../src/backend/kv_meta_store.ts";
import type { ChordFailure } from "../src/backend/port.ts";
import { ProtocolError } from "../protocol.ts";
import { chordPart } from "./helpers/chord_keys.ts";

/**
 * Record the keys each atomic operation sets and deletes (`-` before a deleted one); those of
 * the operations that committed are in `committed`.
 */
function recordCommits(): { committed: string[][]; restore: () => void } {
  const proto = Deno.AtomicOperation.prototype;
  const { set, delete: del, commit } = proto;
  const sets = new WeakMap<Deno.AtomicOperation, string[]>();
  const committed: string[][] = [];
  proto.set = function (this: Deno.AtomicOperation, key, value, options) {
    sets.set(this, [...sets.get(this) ?? [], JSON.stringify(key)]);
    return set.call(this, key, value, options);
  };
  proto.delete = function (this: Deno.AtomicOperation, key) {
    sets.set(this, [...sets.get(this) ?? [], `-${JSON.stringify(key)}`]);
    return del.call(this, key);
  };
  proto.commit = async function (this: Deno.AtomicOperation) {
    const result = await commit.call(this);
    if (result.ok) committed.push(sets.get(this) ?? []);
    return result;
  };
  return {
    committed,
    restore: () => {
      proto.set = set;
      proto.delete = del;
      proto.commit = commit;
    },
  };
}

Deno.test("kv chord claimed at once with a long body FAILURE: only the winning claim writes its head, no parts left over", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-chord-claim-parts-" });
  const backend = await openKvBackend(`kv://${dir}/results.sqlite`, { prefix: ["cp"] });
  const raw = await Deno.openKv(`${dir}/results.sqlite`);
  const headKey = JSON.stringify(["cp", "celery-task-meta", "body"]);
  // A traceback three values long.
  const traceback = "x".repeat(3 * KV_VALUE_BYTES);
  let asked = 0;
  const failure: ChordFailure = (err) => {
    asked++;
    const meta = JSON.stringify({
      status: "FAILURE",
      result: { exc_type: "ChordError", exc_message: [err.message] },
      traceback,
      task_id: "body",
    });
    return [{ taskId: "body", status: "FAILURE", meta }];
  };
  await raw.set(["cp", "chord", "g", "size"], "lots");
  const record = recordCommits();
  let settled: PromiseSettledResult<unknown>[];
  try {
    settled = await Promise.allSettled([
      backend.chordPartReturn(chordPart("g", 0), failure),
      backend.chordPartReturn(chordPart("g", 1), failure),
    ]);
  } finally {
    record.restore();
  }
  try {
    // Both members read the chord spoiled and raced the claim; one won.
    assert.equal(asked, 2);
    assert.deepEqual(settled.map((s) => s.status).sort(), ["fulfilled", "rejected"]);
    const { reason } = settled.find((s) => s.status === "rejected") as PromiseRejectedResult;
    assert.ok(reason instanceof ProtocolError, String(reason));
    const headWrites = record.committed.filter((keys) => keys.includes(headKey));
    assert.equal(headWrites.length, 1, `commits that wrote the head: ${headWrites.length}`);
    // The head was written by the claim itself: with the spoiled size's delete.
    const sizeKey = JSON.stringify(["cp", "chord", "g", "size"]);
    assert.ok(headWrites[0].includes(`-${sizeKey}`), JSON.stringify(headWrites[0]));
    const meta = await backend.get("body");
    assert.equal(meta?.status, "FAILURE");
    assert.equal(meta?.traceback, traceback);
    const head = (await raw.get<StoredResult>(["cp", "celery-task-meta", "body"])).value!;
    const parts = [];
    for await (const e of raw.list({ prefix: ["cp", "celery-task-meta-part", "body"] })) {
      parts.push(e.key);
    }
    assert.equal(parts.length, head.parts!.count, JSON.stringify(parts));
    assert.ok(parts.every((k) => k[3] === head.parts!.id), JSON.stringify(parts));
  } finally {
    raw.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
