/**
 * A task whose start table slot is held by an earlier task (its outcome not
 * yet read by the main thread) posts its start by message. A terminate of
 * another task of its Web Worker that came before that message was handled
 * used to find it not started and put it back: it had run, and would run
 * again (Celery re-runs no started task). Its start is now also written in
 * shared memory beside the slots, read at the terminate.
 */

import assert from "node:assert/strict";
import { poolRunRequest } from "./helpers/run_info.ts";
import { onePool } from "./helpers/runs_pool.ts";
import { exists, until } from "./helpers/waits.ts";

/** Far above the dispatch numbers the other requests of this process take. */
const SEQ = 3_000_000;

Deno.test("threads pool: a terminate never puts back a started task that posted its start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "start-aside-" });
  const file = `${dir}/runs`;
  const gate = `${dir}/go`;
  const aside = `${dir}/aside`;
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    // Succeeds: its outcome waits unread while the main thread is busy below, holding its slot.
    const first = poolRunRequest("runs.spin", [0, file], { seq: SEQ });
    p.run([first]);
    while (!exists(file)) {
      // busy: the main thread reads no outcome
    }
    // The same slot (1024 later): its start is posted, the slot being held by `first`.
    const second = poolRunRequest("runs.await", [aside], { seq: SEQ + 1024 });
    const stuck = poolRunRequest("runs.await", [gate]);
    p.run([second, stuck]);
    while (!exists(`${aside}.started`) || !exists(`${gate}.started`)) {
      // busy: the main thread handles no `started` message
    }
    p.terminate([stuck.seq]);
    await until("the terminate's report", () => limited.length > 0);
    // Before: abandoned [second] (put back, to run again), lost [].
    assert.deepEqual(limited, [{ seq: stuck.seq, seconds: 0, abandoned: [] }]);
    assert.deepEqual(lost, [second.seq]);
    assert.deepEqual(outcomes.map((o) => [o.seq, o.ok]), [[first.seq, true]]);
  } finally {
    await Deno.writeTextFile(gate, "");
    await Deno.writeTextFile(aside, "");
    await p.close();
    await Deno.remove(dir, { recursive: true });
  }
});
