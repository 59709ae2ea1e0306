/**
 * The start table a Web Worker writes its tasks' starts to and the main
 * thread reads: a slot is only taken over once its task has finished.
 */

import assert from "node:assert/strict";
import { StartTable } from "../src/worker/start_table.ts";

Deno.test("start table: a recorded start is read back on the other side, in its time", () => {
  const main = new StartTable();
  const worker = new StartTable(main.memory);
  const before = performance.now();
  assert.equal(worker.record(5, () => false), true);
  const at = main.startedAt(5);
  assert.ok(at !== null && at >= before - 1 && at <= performance.now() + 1, `read ${at}`);
  assert.equal(main.startedAt(6), null, "not started");
  assert.equal(main.startedAt(5 + 1024), null, "same slot, another task");
});

Deno.test("start table: a slot held by a running task is not taken; a finished one's is", () => {
  const main = new StartTable();
  const worker = new StartTable(main.memory);
  const running = new Set([3]);
  assert.equal(worker.record(3, (s) => running.has(s)), true);
  assert.equal(worker.record(3 + 1024, (s) => running.has(s)), false, "task 3 still runs");
  assert.notEqual(main.startedAt(3), null, "task 3's start is kept");
  assert.equal(main.startedAt(3 + 1024), null);
  running.delete(3);
  assert.equal(worker.record(3 + 1024, (s) => running.has(s)), true);
  assert.notEqual(main.startedAt(3 + 1024), null);
  assert.equal(main.startedAt(3), null, "its slot now holds the other task");
});
