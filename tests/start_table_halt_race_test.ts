/**
 * A start the main thread reads after its halt is one the Web Worker runs.
 * The Web Worker wrote a task's start, then read the halt: a start written
 * after the halt was set, and before the main thread read the table, was
 * read started (the pool reported the task lost) while the Web Worker,
 * reading the halt, did not run it (nor was it handed on). Rounds of a Web
 * Worker starting tasks back to back (`apps/start_racer.ts`), halted at a
 * random point of them.
 */

import assert from "node:assert/strict";
import { StartTable } from "../src/worker/start_table.ts";

const TASKS = 600;
const ROUNDS = 1000;

Deno.test("start table: after its halt, a task reads started exactly when its Web Worker runs it", async () => {
  const racer = new Worker(new URL("./apps/start_racer.ts", import.meta.url).href, {
    type: "module",
  });
  try {
    const misread: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const main = new StartTable();
      const ran = new Int32Array(new SharedArrayBuffer((TASKS + 1) * 4));
      const done = new Promise((resolve) => racer.onmessage = resolve);
      racer.postMessage({ memory: main.memory, ran, tasks: TASKS });
      const at = 1 + Math.floor(Math.random() * (TASKS - 100));
      while (Atomics.load(ran, 0) < at) {
        // the Web Worker starts tasks
      }
      main.halt();
      const started = [];
      for (let seq = 1; seq <= TASKS; seq++) if (main.hasStarted(seq)) started.push(seq);
      await done;
      for (const seq of started) {
        if (Atomics.load(ran, seq) !== 1) misread.push(`round ${round}: task ${seq}`);
      }
      for (let seq = 1; seq <= TASKS; seq++) {
        if (Atomics.load(ran, seq) === 1 && !started.includes(seq)) {
          misread.push(`round ${round}: task ${seq} ran, read as not started`);
        }
      }
    }
    // Before: some rounds read a task started that its Web Worker, halted, never ran.
    assert.deepEqual(misread, [], "started after the halt, not run");
  } finally {
    racer.terminate();
  }
});
