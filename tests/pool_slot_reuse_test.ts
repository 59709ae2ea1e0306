/**
 * A Web Worker's start table has 1024 slots, a task's is its dispatch
 * number modulo 1024. A slot used to be taken over as soon as its task's
 * handler returned, though the main thread had not yet read that task's
 * outcome: what the table said of it (started, finished) was then the
 * next task's. A terminate of another task in that window read the
 * finished task as never started: it was put back (to run twice) and its
 * outcome dropped. The slot is now taken over only once the main thread
 * has read the outcome of the task that held it.
 */

import assert from "node:assert/strict";
import { poolRunRequest } from "./helpers/run_info.ts";
import { onePool, runsOf } from "./helpers/runs_pool.ts";
import { exists, until } from "./helpers/waits.ts";

/** Far above the dispatch numbers the other requests of this process take. */
const SEQ = 1_000_000;

Deno.test("threads pool: a terminate does not put back a finished task whose start table slot a later task took", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slot-reuse-" });
  const gate = `${dir}/go`;
  const file = `${dir}/runs`;
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    // Fails at once: its outcome is posted, and not read while the main thread waits below.
    const first = poolRunRequest("runs.spin", [0, `${dir}/missing/runs`], { seq: SEQ });
    // The same slot (1024 later): it starts once the first has returned.
    const second = poolRunRequest("runs.spin", [0, file], { seq: SEQ + 1024 });
    const stuck = poolRunRequest("runs.await", [gate], { timeLimits: { hard: 600, soft: null } });
    p.run([first, second, stuck]);
    // Waited for synchronously: the main thread reads no outcome meanwhile.
    while (!exists(`${gate}.started`)) {
      // the Web Worker runs the first two, hands their outcomes on, starts the awaiting one
    }
    p.terminate([stuck.seq]);
    await until("the terminate's report", () => limited.length > 0);
    // Before: abandoned [first] (put back though it ran), and its outcome dropped.
    assert.deepEqual(limited, [{ seq: stuck.seq, seconds: 0, abandoned: [] }]);
    assert.deepEqual(lost, []);
    assert.deepEqual(
      outcomes.map((o) => [o.seq, o.ok]).sort((a, b) => Number(a[0]) - Number(b[0])),
      [[first.seq, false], [second.seq, true]],
    );
    assert.deepEqual(runsOf(file, [second]), [1]);
  } finally {
    // Ends the thread Deno may leave running.
    await Deno.writeTextFile(gate, "");
    await p.close();
    await Deno.remove(dir, { recursive: true });
  }
});
