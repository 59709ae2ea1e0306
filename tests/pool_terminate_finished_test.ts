/**
 * A revoke with terminate, with no time limits set, stops only the task it
 * names: the tasks its Web Worker already finished keep their outcomes (as
 * a Celery prefork child sent its results before it was killed). Their
 * outcomes used to stay in the Web Worker until a later task let its turn
 * end (tasks given in one message run back to back; CPU-bound outcomes are
 * held while more tasks wait), and were lost with the thread: the main
 * thread reported those tasks lost. Each run is counted in a file.
 */

import assert from "node:assert/strict";
import type { RunRequest } from "../src/worker/executor.ts";
import type { ThreadPool } from "../src/worker/thread_pool.ts";
import { poolRunRequest } from "./helpers/run_info.ts";
import { onePool, runsOf } from "./helpers/runs_pool.ts";
import { exists, until } from "./helpers/waits.ts";

function spin(ms: number, file: string): RunRequest {
  return poolRunRequest("runs.spin", [ms, file]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Hand four runs to one Web Worker with `send` (the third spins 3 s), terminate
 * the third while it runs, and check the first two keep their outcomes.
 */
async function terminateThird(send: (p: ThreadPool, reqs: RunRequest[]) => void): Promise<void> {
  const file = await Deno.makeTempFile({ prefix: "terminate-finished-" });
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    const reqs = [200, 200, 3000, 200].map((ms) => spin(ms, file));
    send(p, reqs);
    await sleep(900); // the first two have run, the third runs
    p.terminate([reqs[2].seq]);
    await sleep(200);
    // Before: [] reported, both finished tasks lost.
    assert.deepEqual(
      lost,
      [],
      `finished tasks reported lost (runs per task ${runsOf(file, reqs)})`,
    );
    assert.deepEqual(outcomes.map((o) => [o.seq, o.ok]), [[reqs[0].seq, true], [
      reqs[1].seq,
      true,
    ]]);
    assert.deepEqual(limited, [{ seq: reqs[2].seq, seconds: 0, abandoned: [reqs[3].seq] }]);
    await sleep(2500); // the stuck task ends its 3 s in the terminated thread
    assert.deepEqual(runsOf(file, reqs), [1, 1, 1, 0]);
  } finally {
    await p.close();
    await Deno.remove(file);
  }
}

Deno.test("threads pool: terminate keeps the outcomes of the tasks one message ran before the stuck one", async () => {
  // One message: their handlers run back to back.
  await terminateThird((p, reqs) => p.run(reqs));
});

Deno.test("threads pool: terminate keeps the outcomes a Web Worker held while more messages waited", async () => {
  // One message each: the first two outcomes were held while the later messages waited.
  await terminateThird((p, reqs) => {
    for (const r of reqs) p.run([r]);
  });
});

Deno.test("threads pool: terminate reads the outcomes written to the ring and not yet read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terminate-ring-" });
  const file = `${dir}/runs`;
  const gate = `${dir}/go`;
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    const quick = spin(0, file);
    // With a hard time limit it starts only once the quick task's outcome is in the ring.
    const stuck = poolRunRequest("runs.block", [gate], { timeLimits: { hard: 600, soft: null } });
    p.run([quick, stuck]);
    // Waited for synchronously: the main thread reads nothing from the ring meanwhile.
    while (!exists(`${gate}.started`)) {
      // the Web Worker runs the quick task, hands its outcome on, starts the stuck one
    }
    p.terminate([stuck.seq]);
    // Before: the quick task reported lost, its outcome in the ring never read.
    assert.deepEqual(lost, [], `finished task reported lost (runs ${runsOf(file, [quick])})`);
    assert.deepEqual(outcomes.map((o) => [o.seq, o.ok]), [[quick.seq, true]]);
    assert.deepEqual(limited, [{ seq: stuck.seq, seconds: 0, abandoned: [] }]);
  } finally {
    // Ends the thread Deno may leave running.
    await Deno.writeTextFile(gate, "");
    await p.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("threads pool: terminate waits for the outcomes posted and not yet read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terminate-posted-" });
  const gate = `${dir}/go`;
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    // Fails at once (its file's directory does not exist): a failure is posted, not written to the ring.
    const failed = spin(0, `${dir}/missing/runs`);
    const stuck = poolRunRequest("runs.block", [gate], { timeLimits: { hard: 600, soft: null } });
    p.run([failed, stuck]);
    // Waited for synchronously: the main thread reads no post meanwhile.
    while (!exists(`${gate}.started`)) {
      // the Web Worker runs the failing task, posts its outcome, starts the stuck one
    }
    p.terminate([stuck.seq]);
    await sleep(300);
    // Before: the failed task reported lost (its post dropped with the Web Worker), no outcome.
    assert.deepEqual(lost, [], "a finished task reported lost");
    assert.deepEqual(outcomes.map((o) => [o.seq, o.ok]), [[failed.seq, false]]);
    assert.deepEqual(limited, [{ seq: stuck.seq, seconds: 0, abandoned: [] }]);
  } finally {
    // Ends the thread Deno may leave running.
    await Deno.writeTextFile(gate, "");
    await p.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("threads pool: a task not started when the terminate is decided does not start while it waits for posted outcomes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "terminate-halt-" });
  const gate = `${dir}/go`;
  const queuedGate = `${dir}/queued`;
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    // Fails at once: its outcome is posted, and not read while the main thread waits below.
    const failed = spin(0, `${dir}/missing/runs`);
    // Holds its Web Worker's thread until freed, then awaits: the thread is free to start others.
    const stuck = poolRunRequest("runs.holdThenAwait", [gate], {
      timeLimits: { hard: 600, soft: null },
    });
    p.run([failed, stuck]);
    // Waited for synchronously: the main thread reads no post meanwhile.
    while (!exists(`${gate}.started`)) {
      // the Web Worker runs the failing task, posts its outcome, starts the holding one
    }
    // Handed to the Web Worker while its thread is held: not started when the terminate is decided.
    // (A free thread could start it between the two calls: the pool then rightly reports it lost.)
    const queued = poolRunRequest("runs.block", [queuedGate]);
    p.run([queued]);
    p.terminate([stuck.seq]);
    // The terminate waits for the failed task's outcome: free the thread, and leave it time to start
    // more.
    Deno.writeTextFileSync(`${gate}.free`, "");
    const end = performance.now() + 500;
    while (!exists(`${queuedGate}.started`) && performance.now() < end) {
      // before: the Web Worker, not halted while the terminate waits, starts the queued task
    }
    await until("the terminate's report", () => limited.length > 0, 10_000, 10);
    // Before: the queued task started during the wait and was reported lost.
    assert.deepEqual(lost, [], "a task reported lost");
    assert.equal(exists(`${queuedGate}.started`), false, "the queued task started");
    assert.deepEqual(outcomes.map((o) => [o.seq, o.ok]), [[failed.seq, false]]);
    assert.deepEqual(limited, [{ seq: stuck.seq, seconds: 0, abandoned: [queued.seq] }]);
  } finally {
    // End the threads Deno may leave running.
    await Deno.writeTextFile(`${gate}.free`, "");
    await Deno.writeTextFile(gate, "");
    await Deno.writeTextFile(queuedGate, "");
    await p.close();
    await Deno.remove(dir, { recursive: true });
  }
});
