/**
 * A task whose start table slot is held by an earlier task (finished, its
 * outcome not yet read by the main thread) posts its start by message. Its
 * finish used to be dropped then (the holder's was kept in the slot's one
 * cell): a terminate of it after it had finished halted its Web Worker, so
 * its real outcome was replaced by a terminate and a running task of the
 * same Web Worker was lost. Such a finish is now kept beside the slots.
 */

import assert from "node:assert/strict";
import { poolRunRequest } from "./helpers/run_info.ts";
import { onePool } from "./helpers/runs_pool.ts";
import { exists, until } from "./helpers/waits.ts";

/** Far above the dispatch numbers the other requests of this process take. */
const SEQ = 2_000_000;

Deno.test("threads pool: a terminate of a finished task that posted its start stops nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finish-aside-" });
  const gate = `${dir}/go`;
  const file = `${dir}/runs`;
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    // Succeeds: its outcome waits unread while the main thread is busy below.
    const first = poolRunRequest("runs.spin", [0, file], { seq: SEQ });
    p.run([first]);
    while (!exists(file)) {
      // busy: the main thread reads no outcome
    }
    // The same slot (1024 later), fails: its start is posted, the slot being held by `first`.
    const second = poolRunRequest("runs.spin", [0, `${dir}/missing/runs`], { seq: SEQ + 1024 });
    const stuck = poolRunRequest("runs.await", [gate], { timeLimits: { hard: 600, soft: null } });
    p.run([second, stuck]);
    while (!exists(`${gate}.started`)) {
      // busy: `second` has returned, `stuck` runs
    }
    p.terminate([second.seq]);
    await Deno.writeTextFile(gate, "");
    await until(
      "every outcome",
      () => outcomes.length >= 3 || lost.length > 0 || limited.length > 0,
    );
    // Before: limited [{seq: second}], lost [stuck], and second's failure missing.
    assert.deepEqual(limited, []);
    assert.deepEqual(lost, []);
    assert.deepEqual(
      outcomes.map((o) => [o.seq, o.ok]).sort((a, b) => Number(a[0]) - Number(b[0])),
      [[stuck.seq, true], [first.seq, true], [second.seq, false]].sort((a, b) =>
        Number(a[0]) - Number(b[0])
      ),
    );
  } finally {
    // Ends the thread Deno may leave running.
    await Deno.writeTextFile(gate, "");
    await p.close();
    await Deno.remove(dir, { recursive: true });
  }
});
