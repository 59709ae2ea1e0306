/**
 * A Web Worker that starts tasks 1, 2, ... through a start table as a pool's
 * Web Worker does ({@link StartTable.begin}) until the table says it is
 * halted, noting in shared memory each task it would run and how far it got.
 */

/// <reference lib="deno.worker" />

import { StartTable, type StartTableMemory } from "../../src/worker/start_table.ts";

/** One round: the main thread's table, where to note the runs, and the tasks to try. */
interface Round {
  memory: StartTableMemory;
  /** Cell 0: tasks begun so far; cell `seq`: 1 once task `seq` would run. */
  ran: Int32Array;
  tasks: number;
}

self.onmessage = (e: MessageEvent<Round>) => {
  const { memory, ran, tasks } = e.data;
  const table = new StartTable(memory);
  for (let seq = 1; seq <= tasks; seq++) {
    if (table.begin(seq) === "halted") break;
    Atomics.store(ran, seq, 1);
    Atomics.store(ran, 0, seq);
  }
  self.postMessage("done");
};
