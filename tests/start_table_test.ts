/**
 * The start table a Web Worker writes its tasks' starts to and the main
 * thread reads: a slot is only taken over once the main thread has read its
 * task's outcome, and a start is read on the main thread's clock whatever
 * the Web Worker's wall-clock origin.
 */

import assert from "node:assert/strict";
import { StartTable } from "../src/worker/start_table.ts";

Deno.test("start table: a recorded start is read back on the other side, in its time", () => {
  const main = new StartTable();
  const worker = new StartTable(main.memory);
  main.sync(performance.now());
  const before = performance.now();
  assert.equal(worker.record(5), true);
  const at = main.startedAt(5);
  assert.ok(at !== null && at >= before - 1 && at <= performance.now() + 1, `read ${at}`);
  assert.equal(main.startedAt(6), null, "not started");
  assert.equal(main.startedAt(5 + 1024), null, "same slot, another task");
});

Deno.test("start table: a slot is taken over only once the main thread read its task's outcome", () => {
  const main = new StartTable();
  const worker = new StartTable(main.memory);
  main.sync(performance.now());
  assert.equal(worker.record(3), true);
  assert.equal(worker.record(3 + 1024), false, "task 3 still runs");
  assert.notEqual(main.startedAt(3), null, "task 3's start is kept");
  assert.equal(main.startedAt(3 + 1024), null);
  worker.finish(3);
  // Before: taken over here, task 3's start and finish read as never written.
  assert.equal(worker.record(3 + 2048), false, "task 3's outcome is not read yet");
  worker.finish(3 + 2048);
  assert.equal(main.hasStarted(3), true, "task 3's start is kept");
  assert.equal(main.hasFinished(3), true, "task 3's finish is kept");
  main.release(3 + 1024); // not the slot's task: nothing noted
  assert.equal(worker.record(3 + 3072), false);
  main.release(3);
  assert.equal(worker.record(3 + 3072), true);
  assert.notEqual(main.startedAt(3 + 3072), null);
  assert.equal(main.startedAt(3), null, "its slot now holds the other task");
});

/** Record `seq` as a Web Worker spawned after the wall clock moved by `step` ms would. */
function recordStepped(worker: StartTable, seq: number, step: number): void {
  const origin = performance.timeOrigin;
  Object.defineProperty(performance, "timeOrigin", { value: origin + step, configurable: true });
  try {
    worker.record(seq);
  } finally {
    Object.defineProperty(performance, "timeOrigin", { value: origin, configurable: true });
  }
}

Deno.test("start table: a Web Worker's wall-clock origin 30 s off does not move the starts it writes", () => {
  for (const step of [-30_000, 30_000]) {
    const main = new StartTable();
    const worker = new StartTable(main.memory);
    main.sync(performance.now());
    const before = performance.now();
    recordStepped(worker, 9, step);
    const at = main.startedAt(9);
    assert.ok(
      at !== null && at >= before - 1 && at <= performance.now() + 1,
      `step ${step}: read ${at}`,
    );
  }
});

Deno.test("start table: nothing is read before the Web Worker's clock is known, and a late sync reads late, never early", () => {
  const main = new StartTable();
  const worker = new StartTable(main.memory);
  const before = performance.now();
  worker.record(4);
  assert.equal(main.startedAt(4), null, "no sync yet");
  // The ready message waited 50 ms before the main thread handled it.
  main.sync(performance.now() - 50);
  const late = main.startedAt(4)!;
  assert.ok(late >= before + 50 - 1, `read ${late - before} ms after the start`);
  // A message that waited less narrows it; one that waited more does not widen it.
  main.sync(performance.now());
  main.sync(performance.now() - 80);
  const at = main.startedAt(4)!;
  assert.ok(at >= before - 1 && at < late - 40, `read ${at - before} ms after the start`);
});

Deno.test("start table: the finish of a task that posted its start is kept beside its slot's holder's", () => {
  const main = new StartTable();
  const worker = new StartTable(main.memory);
  assert.equal(worker.record(6), true);
  // Posted its start (task 6 runs) and finishes first: task 6's finish must not overwrite it.
  assert.equal(worker.record(6 + 1024), false);
  worker.finish(6 + 1024);
  worker.finish(6);
  // Posted its start (task 6's outcome unread) and finishes: task 6's finish must be kept too.
  assert.equal(worker.record(6 + 2048), false);
  worker.finish(6 + 2048);
  for (const seq of [6, 6 + 1024, 6 + 2048]) {
    assert.equal(main.hasFinished(seq), true, `task ${seq}`);
  }
  assert.equal(main.hasFinished(6 + 3072), false, "not finished");
});

Deno.test("start table: finishes of tasks that posted their start, 4096 apart in one slot, are all kept", () => {
  const main = new StartTable();
  const worker = new StartTable(main.memory);
  // Task 6 holds slot 6 (an async task still running): each later task of the slot posts its start.
  assert.equal(worker.record(6), true);
  const aside = [1, 2, 3, 4, 5, 9].map((k) => 6 + k * 1024);
  for (const seq of aside) assert.equal(worker.record(seq), false);
  // They finish before the main thread reads their outcomes: 6 + 5 * 1024 shares a cell with 6 + 1024.
  for (const seq of aside) worker.finish(seq);
  for (const seq of aside) assert.equal(main.hasFinished(seq), true, `task ${seq}`);
  assert.equal(main.hasFinished(6), false, "task 6 still runs");
  assert.equal(main.hasFinished(6 + 6 * 1024), false, "not finished");
});

Deno.test("start table: a finish beside the slots is forgotten once its outcome is read, for those after", () => {
  const main = new StartTable();
  const worker = new StartTable(main.memory);
  assert.equal(worker.record(6), true);
  // Thousands of tasks of slot 6 post their start, finish, and have their outcomes read in turn.
  for (let k = 1; k <= 5000; k++) {
    const seq = 6 + k * 1024;
    assert.equal(worker.record(seq), false);
    worker.finish(seq);
    assert.equal(main.hasFinished(seq), true, `task ${seq}`);
    main.release(seq);
  }
  // Then 1000 finish before any outcome is read (4 cells and 1024 beside them): each is kept.
  const unread = Array.from({ length: 1000 }, (_, k) => 6 + (5001 + k) * 1024);
  for (const seq of unread) {
    worker.record(seq);
    worker.finish(seq);
  }
  for (const seq of unread) assert.equal(main.hasFinished(seq), true, `task ${seq}`);
});

Deno.test("start table: the start of a task that posted it is kept beside the slots until its outcome is read", () => {
  const main = new StartTable();
  const worker = new StartTable(main.memory);
  assert.equal(worker.record(9), true);
  // Thousands of tasks of slot 9 start in turn, each read and forgotten before the next.
  for (let k = 1; k <= 3000; k++) {
    const seq = 9 + k * 1024;
    assert.equal(main.hasStarted(seq), false, `task ${seq} before its start`);
    assert.equal(worker.record(seq), false);
    assert.equal(main.hasStarted(seq), true, `task ${seq}`);
    main.release(seq);
    assert.equal(main.hasStarted(seq), false, `task ${seq} after its outcome`);
  }
  // Then 1024 run at once, all kept; one more is only posted.
  const running = Array.from({ length: 1025 }, (_, k) => 9 + (3001 + k) * 1024);
  for (const seq of running) worker.record(seq);
  assert.deepEqual(running.filter((s) => !main.hasStarted(s)), [running[1024]]);
  assert.equal(main.hasStarted(9), true);
});
