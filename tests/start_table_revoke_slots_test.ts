/**
 * Revoked marks of two tasks whose dispatch numbers are 1024 apart (the
 * start table's slot count) and that one Web Worker holds at once: both
 * are marked, and neither runs. The second used to find the slot's mark
 * held by the first and was left unmarked (logged "may still run"), and
 * ran. Each run is counted in a file.
 */

import assert from "node:assert/strict";
import { StartTable } from "../src/worker/start_table.ts";
import { nextSeq, poolRunRequest } from "./helpers/run_info.ts";
import { onePool, runsOf } from "./helpers/runs_pool.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("start table: revoked marks of held tasks sharing a slot are all kept", () => {
  const main = new StartTable();
  const worker = new StartTable(main.memory);
  const held = new Set([5, 5 + 1024, 5 + 2048, 7]);
  for (const s of held) assert.ok(main.revoke(s, (x) => held.has(x)), `${s} not marked`);
  for (const s of held) assert.ok(worker.revoked(s), `${s} not revoked`);
  assert.ok(!worker.revoked(5 + 3072), "an unrevoked task of the slot reads as revoked");
  assert.ok(!worker.revoked(6));
  // Once the first ones are no longer held, their room is taken again.
  held.clear();
  held.add(5 + 3072);
  held.add(5 + 4096);
  assert.ok(main.revoke(5 + 3072, (x) => held.has(x)));
  assert.ok(main.revoke(5 + 4096, (x) => held.has(x)));
  assert.ok(worker.revoked(5 + 3072) && worker.revoked(5 + 4096));
  assert.ok(!worker.revoked(5 + 5120));
});

Deno.test("threads pool: two revoked tasks 1024 dispatches apart in one Web Worker both do not run", async () => {
  const file = await Deno.makeTempFile({ prefix: "revoke-slots-" });
  const { pool: p, outcomes, lost } = await onePool();
  try {
    const blocker = poolRunRequest("runs.spin", [800, file]);
    const a = poolRunRequest("runs.spin", [10, file]);
    const b = poolRunRequest("runs.spin", [10, file], { seq: a.seq + 1024 });
    // Past b's number: later tests of this process take fresh ones.
    let last = nextSeq();
    while (last < b.seq) last = nextSeq();
    p.run([blocker]);
    p.run([a, b]);
    await sleep(200); // the blocker runs, a and b wait behind it
    p.revoke([a.seq, b.seq]);
    for (let i = 0; i < 30 && outcomes.length < 3; i++) await sleep(100);
    assert.deepEqual(lost, []);
    const revoked = new Map(outcomes.map((o) => [o.seq, o.revoked ?? false]));
    // Before: b ran ([1, 0, 1]), reported as an ordinary outcome.
    assert.deepEqual(runsOf(file, [blocker, a, b]), [1, 0, 0]);
    assert.deepEqual([revoked.get(a.seq), revoked.get(b.seq)], [true, true]);
  } finally {
    await p.close();
    await Deno.remove(file);
  }
});
