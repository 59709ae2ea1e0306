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

/**
 * The next turn of the event loop: every task started before it has run up
 * to its first await (first runs run in microtasks, ahead of any timer),
 * whatever the wall clock says on a loaded host.
 */
const nextTurn = () => new Promise((r) => setTimeout(r, 0));

/** Spin `wallMs` of wall time, of which the thread ran `cpuMs` (preempted for the rest). */
function preempted(wallMs: number, cpuMs: number, clock: { cpu: number }): void {
  const end = performance.now() + wallMs;
  while (performance.now() < end) {
    // the thread waits for a core most of this time
  }
  clock.cpu += cpuMs;
}

/**
 * A runner with a fake thread clock; each outcome handed on costs `packMs`
 * of it (the runner's own work). `share(o)` is what `blocked` counts beyond
 * the task's first run: the first run is wall time (the executor's
 * `performance.now()`, longer whenever the host preempts the test), the
 * share comes from the fake clock alone, so it is exact.
 */
function fakeRunner(packMs: number) {
  const clock = { cpu: 1000 };
  const outcomes: RunOutcome[] = [];
  const firstRuns = new Map<number, number>();
  const waiters = new Map<number, PromiseWithResolvers<RunOutcome>>();
  const waiter = (seq: number) => {
    let w = waiters.get(seq);
    if (!w) waiters.set(seq, w = Promise.withResolvers());
    return w;
  };
  const runner = new BatchRunner(
    (o) => {
      clock.cpu += packMs * o.length;
      outcomes.push(...o);
      for (const x of o) waiter(x.seq).resolve(x);
    },
    { finished: (seq, blocked) => firstRuns.set(seq, blocked) },
    undefined,
    new CpuShares(() => clock.cpu),
  );
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const outcome = (seq: number) => waiter(seq).promise;
  const share = (o: RunOutcome) => {
    const first = firstRuns.get(o.seq);
    assert.ok(first !== undefined && o.blocked !== undefined, `task ${o.seq} ran`);
    return o.blocked - first;
  };
  return { clock, outcomes, firstRuns, outcome, share, runner, app };
}

/** A thenable that is not a native Promise (awaited as one all the same): what `p` gives. */
function thenableOf(p: Promise<number>): PromiseLike<number> {
  return { then: (onFulfilled, onRejected) => p.then(onFulfilled, onRejected) };
}

/** Whether `ms` is `expected` but for rounding. */
const about = (ms: number, expected: number) => Math.abs(ms - expected) < 1e-6;

Deno.test("CPU shares: the runner's work for synchronous tasks is not given to a task that awaits beside them", async () => {
  const { clock, outcomes, outcome, share, runner, app } = fakeRunner(0.03);
  const io = Promise.withResolvers<void>();
  app.task("t.io", async () => await io.promise);
  app.task("t.noop", () => {
    clock.cpu += 0.001;
  });
  const req = poolRunRequest("t.io", []);
  runner.run(app.tasks, [req]);
  for (let i = 0; i < 10; i++) {
    await nextTurn();
    runner.run(app.tasks, Array.from({ length: 200 }, () => poolRunRequest("t.noop", [])));
  }
  await nextTurn();
  assert.equal(outcomes.length, 2000, "every no-op ran while the task awaited");
  io.resolve();
  const given = share(await outcome(req.seq));
  assert.ok(
    given < 1,
    `${given} ms for a task that only awaited: 2000 no-ops' 60 ms were given to it`,
  );
  await app.close();
});

Deno.test("CPU shares: first runs are taken off in CPU time, not wall time, under contention", async () => {
  const { clock, firstRuns, outcome, share, runner, app } = fakeRunner(0);
  const nap = Promise.withResolvers<void>();
  const naps = Promise.withResolvers<void>();
  app.task("t.nap_then_compute", async () => {
    await nap.promise;
    clock.cpu += 10; // 10 ms of CPU after the await
  });
  // 5 ms of wall time, 1 ms of it on a CPU (two cores shared by more threads), then a long await.
  let started = 0;
  app.task("t.preempted_then_nap", async () => {
    started++;
    preempted(5, 1, clock);
    await naps.promise;
  });
  const awaits = poolRunRequest("t.nap_then_compute", []);
  runner.run(app.tasks, [awaits]);
  await nextTurn();
  const others = Array.from({ length: 4 }, () => poolRunRequest("t.preempted_then_nap", []));
  runner.run(app.tasks, others);
  await nextTurn();
  assert.equal(started, 4, "the four first runs are over before the 10 ms");
  nap.resolve();
  // Its 10 ms are shared among the five tasks in flight: 2 each.
  const given = share(await outcome(awaits.seq));
  assert.ok(about(given, 2), `${given} ms: 20 ms of wall time were taken off 14 of CPU`);
  naps.resolve();
  for (const req of others) {
    const o = await outcome(req.seq);
    assert.ok(
      firstRuns.get(req.seq)! >= 5,
      `its first run is wall time: ${firstRuns.get(req.seq)}`,
    );
    assert.ok(about(share(o), 2), `its first run (wall time) and its share: ${o.blocked}`);
  }
  await app.close();
});

Deno.test("CPU shares: a handler that returns a thenable other than a native Promise awaits as one that returns a promise", async () => {
  const { clock, outcome, share, runner, app } = fakeRunner(0);
  const nap = Promise.withResolvers<void>();
  const later = Promise.withResolvers<number>();
  app.task("t.nap_then_compute", async () => {
    await nap.promise;
    clock.cpu += 10; // 10 ms of CPU after the await, shared by the two tasks in flight
  });
  app.task<[], PromiseLike<number>>("t.thenable", () => thenableOf(later.promise));
  const native = poolRunRequest("t.nap_then_compute", []);
  const thenable = poolRunRequest("t.thenable", []);
  runner.run(app.tasks, [native, thenable]);
  await nextTurn();
  nap.resolve();
  const first = await outcome(native.seq);
  later.resolve(1);
  for (const out of [first, await outcome(thenable.seq)]) {
    assert.equal(out.ok, true);
    const given = share(out);
    assert.ok(
      about(given, 5),
      `task ${out.seq}: its first run plus ${given} ms, not half of the 10 ms`,
    );
  }
  await app.close();
});
