/**
 * A Web Worker halted by a terminate waits (at most a second) for the
 * outcomes it posted before it is ended; the pool used to keep placing new
 * tasks on it meanwhile, and those were then put back with the tasks it
 * held when the terminate was decided (a needless requeue). A task handed
 * to the pool during that wait now goes to its replacement and runs.
 */

import assert from "node:assert/strict";
import { poolRunRequest } from "./helpers/run_info.ts";
import { onePool, runsOf } from "./helpers/runs_pool.ts";
import { exists, until } from "./helpers/waits.ts";

Deno.test("threads pool: a task handed on while a terminated Web Worker waits for its posted outcomes goes to its replacement", async () => {
  const dir = await Deno.makeTempDir({ prefix: "halted-placement-" });
  const gate = `${dir}/go`;
  const file = `${dir}/runs`;
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    // Fails at once: its outcome is posted, and not read while the main thread waits below.
    const failed = poolRunRequest("runs.spin", [0, `${dir}/missing/runs`]);
    const stuck = poolRunRequest("runs.await", [gate], { timeLimits: { hard: 600, soft: null } });
    p.run([failed, stuck]);
    // Waited for synchronously: the main thread reads no post meanwhile.
    while (!exists(`${gate}.started`)) {
      // the Web Worker runs the failing task, posts its outcome, starts the awaiting one
    }
    p.terminate([stuck.seq]);
    // The terminate waits for the failed task's outcome: the Web Worker is halted, not yet ended.
    const later = poolRunRequest("runs.spin", [0, file]);
    p.run([later]);
    await until("the terminate's report", () => limited.length > 0);
    // Before: the later task was placed on the halted Web Worker and put back with the terminate.
    assert.deepEqual(limited, [{ seq: stuck.seq, seconds: 0, abandoned: [] }]);
    assert.deepEqual(lost, []);
    await until("the later task's outcome", () => outcomes.some((o) => o.seq === later.seq));
    assert.deepEqual(outcomes.map((o) => [o.seq, o.ok]), [[failed.seq, false], [later.seq, true]]);
    assert.deepEqual(runsOf(file, [later]), [1]);
  } finally {
    // Ends the thread Deno may leave running.
    await Deno.writeTextFile(gate, "");
    await p.close();
    await Deno.remove(dir, { recursive: true });
  }
});
