/**
 * What a Web Worker the threads pool terminates (hard time limit, revoke
 * with terminate) still runs. Deno does not stop a thread busy in
 * synchronous code, and such a thread goes on to run the messages queued to
 * it: a task the pool puts back must never also run there, and a task that
 * ran there is never put back (run twice). Each run is counted in a file.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import type { RunRequest } from "../src/worker/executor.ts";
import type { TimeLimits } from "../src/worker/time_limits.ts";
import { nextSeq, poolRunRequest } from "./helpers/run_info.ts";
import { onePool, runsOf } from "./helpers/runs_pool.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { exists, until } from "./helpers/waits.ts";

function spin(ms: number, file: string, timeLimits?: TimeLimits): RunRequest {
  return poolRunRequest("runs.spin", [ms, file], { timeLimits });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("threads pool: tasks put back after a terminate never also run in the terminated Web Worker", async () => {
  const file = await Deno.makeTempFile({ prefix: "kill-runs-" });
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    // Five messages queued to one Web Worker, 300 ms of CPU each.
    const reqs = Array.from({ length: 5 }, () => spin(300, file));
    for (const r of reqs) p.run([r]);
    // The first has run, the second runs (a loaded main thread reads the outcome late, not early).
    for (let i = 0; i < 100 && outcomes.length === 0; i++) await sleep(20);
    const target = reqs[3];
    p.terminate([target.seq]);
    // Reported once the outcomes its Web Worker posted are read: at once, a turn or two later, or
    // when the terminate stops waiting for them (UNREAD_WAIT_MS, 1 s; 1,015 ms seen at load 15).
    for (let i = 0; i < 150 && limited.length === 0; i++) await sleep(20);
    assert.equal(limited.length, 1);
    assert.equal(limited[0].seq, target.seq);
    // What the pool puts back runs again, as the worker would requeue it, on the replacement.
    const back = reqs.filter((r) => limited[0].abandoned.includes(r.seq));
    p.run(back.map((r) => ({ ...r, seq: nextSeq() })));
    // Long enough for the terminated thread to run all it was sent (1.5 s) and the rest to finish.
    await sleep(2500);
    const runs = runsOf(file, reqs);
    const reported = [
      ...outcomes.map((o) => o.seq),
      ...lost,
      target.seq,
      ...back.map((r) => r.seq),
    ];
    assert.equal(runs[3], 0, `the terminated task ran (runs per task ${runs})`);
    assert.ok(runs.every((n) => n <= 1), `a task ran twice (runs per task ${runs})`);
    assert.ok(back.length > 0, "nothing was put back: the test shows nothing");
    // Every task is reported once: finished, lost (it ran in the dying thread), terminated or put back.
    assert.deepEqual(
      reqs.map((r) => reported.filter((s) => s === r.seq).length),
      [1, 1, 1, 1, 1],
    );
  } finally {
    await p.close();
    await Deno.remove(file);
  }
});

Deno.test("threads pool: a hard time limit puts back only tasks that never ran in the terminated Web Worker", async () => {
  const file = await Deno.makeTempFile({ prefix: "kill-runs-" });
  const { pool: p, limited, outcomes, lost } = await onePool();
  try {
    const limits = { hard: 0.5, soft: null };
    const reqs = [spin(100, file), spin(1500, file, limits), spin(100, file), spin(100, file)];
    for (const r of reqs) p.run([r]);
    for (let i = 0; i < 40 && limited.length === 0; i++) await sleep(100);
    assert.equal(limited.length, 1, "the hard limit did not fire");
    assert.equal(limited[0].seq, reqs[1].seq);
    const back = reqs.filter((r) => limited[0].abandoned.includes(r.seq));
    assert.deepEqual(back.map((r) => r.seq), [reqs[2].seq, reqs[3].seq]);
    p.run(back.map((r) => ({ ...r, seq: nextSeq() })));
    await sleep(2500); // the stuck task ends its 1.5 s in the terminated thread
    const runs = runsOf(file, reqs);
    assert.deepEqual(runs.slice(2), [1, 1], `a put-back task ran twice (runs per task ${runs})`);
    assert.equal(
      outcomes.length + lost.length,
      3,
      "the first task and the put-back ones are reported",
    );
  } finally {
    await p.close();
    await Deno.remove(file);
  }
});

Deno.test("threads pool: a revoke with terminate of a task not started stops no Web Worker", async () => {
  const file = await Deno.makeTempFile({ prefix: "kill-runs-" });
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    const reqs = Array.from({ length: 4 }, () => spin(300, file));
    for (const r of reqs) p.run([r]);
    await sleep(450); // the first has run, the second runs
    const target = reqs[3];
    p.revoke([target.seq]);
    p.terminate([target.seq]);
    for (let i = 0; i < 50 && outcomes.length < 4; i++) await sleep(100);
    assert.deepEqual(limited, [], "a Web Worker was terminated for a task that had not started");
    assert.deepEqual(lost, []);
    assert.deepEqual(
      outcomes.map((o) => [o.seq, o.revoked ?? false]).sort((a, b) => +a[0] - +b[0]),
      reqs.map((r) => [r.seq, r === target]),
    );
    assert.deepEqual(runsOf(file, reqs), [1, 1, 1, 0]);
  } finally {
    await p.close();
    await Deno.remove(file);
  }
});

Deno.test("threads pool: a revoke with terminate of a task not started is logged once, as one that ran", async () => {
  // Celery 5.2.6 logs "Terminating ID (signal)" at info for a request that has not started too.
  const dir = await Deno.makeTempDir({ prefix: "kill-runs-" });
  const gate = `${dir}/gate`;
  const file = `${dir}/runs`;
  await Deno.writeTextFile(file, "");
  const records = await captureLogs("info");
  const { pool: p, outcomes, limited, lost } = await onePool();
  try {
    // The Web Worker is held until the gate opens: the task handed to it after cannot start.
    const holder = poolRunRequest("runs.block", [gate]);
    const target = spin(1, file);
    p.run([holder]);
    p.run([target]);
    await until("the holder started", () => exists(`${gate}.started`));
    p.revoke([target.seq]);
    p.terminate([target.seq]);
    await Deno.writeTextFile(gate, "");
    await until("both outcomes", () => outcomes.length === 2);
    assert.deepEqual(limited, [], "a Web Worker was terminated for a task that had not started");
    assert.deepEqual(lost, []);
    assert.deepEqual(
      outcomes.map((o) => [o.seq, o.revoked ?? false]).sort((a, b) => +a[0] - +b[0]),
      [
        [holder.seq, false],
        [target.seq, true],
      ],
    );
    assert.equal(runsOf(file, [target])[0], 0);
    const about = records.map(logLine).filter((l) => l.includes(target.id));
    assert.deepEqual(about.map((l) => l.slice(0, l.indexOf(":"))), [
      `info Terminating runs.spin[${target.id}] (revoked with terminate)`,
    ]);
  } finally {
    await reset();
    await Deno.writeTextFile(gate, "");
    await p.close();
    await Deno.remove(dir, { recursive: true });
  }
});
