/**
 * The line logged when the `threads` pool terminates a Web Worker for a
 * task (hard time limit, revoke with terminate) says what becomes of the
 * other tasks it held: those that had started are interrupted (requeued or
 * failed with WorkerLostError, logged per task), not "lost".
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { captureLogs, logLine } from "./helpers/logs.ts";
import type { PoolEvents } from "../src/worker/pool.ts";
import { reportTerminate } from "../src/worker/terminate_report.ts";

Deno.test("terminate report: the other started tasks are interrupted, not said to be lost", async () => {
  const lost: number[][] = [];
  const limits: [number, number, number[]][] = [];
  const events = {
    onLost: (seqs: number[]) => lost.push(seqs),
    onTimeLimit: (seq: number, seconds: number, back: number[]) =>
      limits.push([seq, seconds, back]),
  } as unknown as PoolEvents;
  const records = await captureLogs("info");
  try {
    reportTerminate(events, { seq: 1, task: "t.slow", id: "abc", held: true }, 0, [2, 3], [4]);
    reportTerminate(events, { seq: 5, task: "t.spin", id: "def", held: true }, 30, [6], []);
  } finally {
    await reset();
  }
  assert.deepEqual(records.map(logLine), [
    "warning Terminating t.slow[abc] (revoked with terminate): its Web Worker is replaced; of the " +
    "other tasks it held, 1 that had not started are handed on and 2 that had are interrupted " +
    "(each requeued or failed with WorkerLostError as its own line says)",
    "error Hard time limit (30s) exceeded for t.spin[def]: its Web Worker is replaced; of the " +
    "other tasks it held, 0 that had not started are handed on and 1 that had are interrupted " +
    "(each requeued or failed with WorkerLostError as its own line says)",
  ]);
  assert.deepEqual(lost, [[2, 3], [6]]);
  assert.deepEqual(limits, [[1, 0, [4]], [5, 30, []]]);
});
