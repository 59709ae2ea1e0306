/**
 * A hard time limit never fires on a task that already finished. A Web
 * Worker given several CPU-bound tasks in one message (their blocking time
 * not known yet) runs their handlers back to back in one turn; their
 * outcomes used to go out only once all had run, so the main thread saw the
 * first ones still running past their limit, failed one and put the others
 * back to run again. Each run is counted in a file.
 */

import assert from "node:assert/strict";
import type { RunRequest } from "../src/worker/executor.ts";
import { poolRunRequest } from "./helpers/run_info.ts";
import { onePool, runsOf } from "./helpers/runs_pool.ts";

function spin(ms: number, file: string, hard: number): RunRequest {
  return poolRunRequest("runs.spin", [ms, file], { timeLimits: { hard, soft: null } });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("threads pool: six 300 ms tasks with a 1 s hard limit in one message all succeed, once each", async () => {
  const file = await Deno.makeTempFile({ prefix: "limit-finished-" });
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    const reqs = Array.from({ length: 6 }, () => spin(300, file, 1));
    p.run(reqs);
    for (let i = 0; i < 100 && outcomes.length + limited.length + lost.length < 6; i++) {
      await sleep(100);
    }
    await sleep(500);
    assert.deepEqual(limited, [], `a limit fired (runs per task ${runsOf(file, reqs)})`);
    assert.deepEqual(lost, []);
    assert.deepEqual(outcomes.map((o) => [o.seq, o.ok]), reqs.map((r) => [r.seq, true]));
    assert.deepEqual(runsOf(file, reqs), [1, 1, 1, 1, 1, 1]);
  } finally {
    await p.close();
    await Deno.remove(file);
  }
});

Deno.test("threads pool: the one 3 s task among 200 ms ones fails its 1 s limit, finished ones are reported", async () => {
  const file = await Deno.makeTempFile({ prefix: "limit-finished-" });
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    const reqs = [200, 200, 3000, 200, 200].map((ms) => spin(ms, file, 1));
    p.run(reqs);
    for (let i = 0; i < 60 && limited.length === 0; i++) await sleep(100);
    assert.deepEqual(limited, [{
      seq: reqs[2].seq,
      seconds: 1,
      abandoned: [reqs[3].seq, reqs[4].seq],
    }]);
    assert.deepEqual(lost, []);
    assert.deepEqual(outcomes.map((o) => [o.seq, o.ok]), [[reqs[0].seq, true], [
      reqs[1].seq,
      true,
    ]]);
    await sleep(2500); // the stuck task ends its 3 s in the terminated thread
    assert.deepEqual(runsOf(file, reqs), [1, 1, 1, 0, 0]);
  } finally {
    await p.close();
    await Deno.remove(file);
  }
});
