/**
 * A spoiled chord's claim in Deno KV and the FAILUREs it stores. A body
 * FAILURE too long for one value, claimed by two members at once: only the
 * claim that wins writes the FAILURE's head (the value that names its
 * parts), and no parts are left behind that the head does not name. Before
 * (77b739d8) every member that read the chord spoiled stored the long
 * FAILURE whole, head included, ahead of its claim: a member that then lost
 * the claim had written it too. A failure of 100 metas (a chord that is a
 * chain step with 99 steps after it) is claimed too: the claim commit once
 * held one check per meta, past Deno KV's 100 checks per commit, and threw.
 * A claim commit that throws leaves no parts behind.
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

/** The failure of a body and `steps` chain steps after it, each with traceback `traceback`. */
function failureOf(steps: number, traceback = ""): ChordFailure {
  return (err) =>
    Array.from({ length: 1 + steps }, (_, i) => {
      const taskId = i === 0 ? "body" : `step${i}`;
      const result = { exc_type: "ChordError", exc_message: [err.message] };
      const meta = JSON.stringify({ status: "FAILURE", result, traceback, task_id: taskId });
      return { taskId, status: "FAILURE", meta };
    });
}

/** The keys of the parts of the body's long meta under namespace `cp`. */
async function partKeys(raw: Deno.Kv): Promise<Deno.KvKey[]> {
  return (await Array.fromAsync(raw.list({ prefix: ["cp", "celery-task-meta-part", "body"] })))
    .map((e) => e.key);
}

Deno.test("kv chord claim with a FAILURE for the body and 99 chain steps: the chord fails, every FAILURE stored", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-chord-claim-steps-" });
  const backend = await openKvBackend(`kv://${dir}/results.sqlite`, { prefix: ["cp"] });
  const raw = await Deno.openKv(`${dir}/results.sqlite`);
  await raw.set(["cp", "chord", "g", "size"], "lots");
  try {
    const traceback = "x".repeat(3 * KV_VALUE_BYTES);
    await assert.rejects(
      backend.chordPartReturn(chordPart("g", 0), failureOf(99, traceback)),
      ProtocolError,
    );
    assert.equal((await raw.get(["cp", "chord", "g", "size"])).value, null, "the size is gone");
    assert.equal((await backend.get("body"))?.traceback, traceback);
    for (let i = 1; i <= 99; i++) {
      assert.equal((await backend.get(`step${i}`))?.status, "FAILURE", `step${i}`);
    }
    const head = (await raw.get<StoredResult>(["cp", "celery-task-meta", "body"])).value!;
    assert.equal((await partKeys(raw)).length, head.parts!.count);
    // A later member finds the chord gone: not joined, not failed again.
    assert.equal(await backend.chordPartReturn(chordPart("g", 1), failureOf(99)), null);
  } finally {
    raw.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv chord claim whose commit throws: the parts written for its long body FAILURE are deleted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-chord-claim-throws-" });
  const backend = await openKvBackend(`kv://${dir}/results.sqlite`, { prefix: ["cp"] });
  const raw = await Deno.openKv(`${dir}/results.sqlite`);
  await raw.set(["cp", "chord", "g", "size"], "lots");
  const proto = Deno.AtomicOperation.prototype;
  const { delete: del, commit } = proto;
  const claims = new WeakSet<Deno.AtomicOperation>();
  const sizeKey = JSON.stringify(["cp", "chord", "g", "size"]);
  proto.delete = function (this: Deno.AtomicOperation, key) {
    if (JSON.stringify(key) === sizeKey) claims.add(this);
    return del.call(this, key);
  };
  proto.commit = function (this: Deno.AtomicOperation) {
    if (claims.has(this)) return Promise.reject(new TypeError("the database is closed"));
    return commit.call(this);
  };
  try {
    await assert.rejects(
      backend.chordPartReturn(chordPart("g", 0), failureOf(0, "x".repeat(3 * KV_VALUE_BYTES))),
      /the database is closed/,
    );
  } finally {
    proto.delete = del;
    proto.commit = commit;
  }
  try {
    assert.deepEqual(await partKeys(raw), [], "no parts that no head names");
    assert.equal((await raw.get(["cp", "chord", "g", "size"])).value, "lots", "not claimed");
  } finally {
    raw.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
