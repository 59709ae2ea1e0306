/**
 * The CPU time of a Web Worker's thread shared among its tasks that await
 * (`cpu_share.ts`), driven through `BatchRunner` with a fake thread clock:
 * what synchronous tasks cost (their runs and the runner's work for them)
 * stays theirs, whatever the wall clock says.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { BatchRunner } from "../src/worker/batch_runner.ts";
import { CpuShares } from "../src/worker/cpu_share.ts";
import type { RunOutcome } from "../src/worker/executor.ts";
import { poolRunRequest } from "./helpers/run_info.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Spin `wallMs` of wall time, of which the thread ran `cpuMs` (preempted for the rest). */
function preempted(wallMs: number, cpuMs: number, clock: { cpu: number }): void {
  const end = performance.now() + wallMs;
  while (performance.now() < end) {
    // the thread waits for a core most of this time
  }
  clock.cpu += cpuMs;
}

/** A runner with a fake thread clock; each outcome handed on costs `packMs` of it (the runner's own work). */
function fakeRunner(packMs: number) {
  const clock = { cpu: 1000 };
  const outcomes: RunOutcome[] = [];
  const runner = new BatchRunner(
    (o) => {
      clock.cpu += packMs * o.length;
      outcomes.push(...o);
    },
    {},
    undefined,
    new CpuShares(() => clock.cpu),
  );
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  return { clock, outcomes, runner, app };
}

/** A thenable that is not a native Promise (awaited as one all the same): 1 after `ms`. */
function thenableAfter(ms: number): PromiseLike<number> {
  const later = sleep(ms).then(() => 1);
  return { then: (onFulfilled, onRejected) => later.then(onFulfilled, onRejected) };
}

async function outcomeOf(outcomes: RunOutcome[], seq: number): Promise<RunOutcome> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const o = outcomes.find((o) => o.seq === seq);
    if (o) return o;
    await sleep(2);
  }
  throw new Error(`no outcome for ${seq}`);
}

Deno.test("CPU shares: the runner's work for synchronous tasks is not given to a task that awaits beside them", async () => {
  const { clock, outcomes, runner, app } = fakeRunner(0.03);
  app.task("t.io", async () => await sleep(40));
  app.task("t.noop", () => {
    clock.cpu += 0.001;
  });
  const io = poolRunRequest("t.io", []);
  runner.run(app.tasks, [io]);
  for (let i = 0; i < 10; i++) {
    await sleep(1);
    runner.run(app.tasks, Array.from({ length: 200 }, () => poolRunRequest("t.noop", [])));
  }
  const blocked = (await outcomeOf(outcomes, io.seq)).blocked!;
  assert.ok(
    blocked < 1,
    `${blocked} ms for a task that only awaited: 2000 no-ops' 60 ms were given to it`,
  );
  await app.close();
});

Deno.test("CPU shares: first runs are taken off in CPU time, not wall time, under contention", async () => {
  const { clock, outcomes, runner, app } = fakeRunner(0);
  app.task("t.nap_then_compute", async () => {
    await sleep(30);
    clock.cpu += 10; // 10 ms of CPU after the await
  });
  // 5 ms of wall time, 1 ms of it on a CPU (two cores shared by more threads), then a long await.
  app.task("t.preempted_then_nap", async () => {
    preempted(5, 1, clock);
    await sleep(80);
  });
  const awaits = poolRunRequest("t.nap_then_compute", []);
  runner.run(app.tasks, [awaits]);
  await sleep(1);
  runner.run(
    app.tasks,
    Array.from({ length: 4 }, () => poolRunRequest("t.preempted_then_nap", [])),
  );
  const out = await outcomeOf(outcomes, awaits.seq);
  // Its 10 ms are shared among the five tasks in flight: 2 each.
  assert.ok(
    out.blocked! >= 1.99 && out.blocked! < 2.5,
    `${out.blocked} ms: 20 ms of wall time were taken off 14 of CPU`,
  );
  while (outcomes.length < 5) await sleep(5);
  for (const o of outcomes.filter((o) => o.seq !== awaits.seq)) {
    assert.ok(o.blocked! >= 5 + 1.99, `its first run (wall time) and its share: ${o.blocked}`);
  }
  await app.close();
});

Deno.test("CPU shares: a handler that returns a thenable other than a native Promise awaits as one that returns a promise", async () => {
  const { clock, outcomes, runner, app } = fakeRunner(0);
  app.task("t.nap_then_compute", async () => {
    await sleep(30);
    clock.cpu += 10; // 10 ms of CPU after the await, shared by the two tasks in flight
  });
  app.task<[], PromiseLike<number>>("t.thenable", () => thenableAfter(80));
  const native = poolRunRequest("t.nap_then_compute", []);
  const thenable = poolRunRequest("t.thenable", []);
  runner.run(app.tasks, [native, thenable]);
  for (const req of [native, thenable]) {
    const out = await outcomeOf(outcomes, req.seq);
    assert.equal(out.ok, true);
    assert.ok(
      out.blocked! >= 4.99 && out.blocked! < 5.5,
      `${req.task}: ${out.blocked} ms, not its first run plus half of the 10 ms`,
    );
  }
  await app.close();
});
