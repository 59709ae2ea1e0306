/**
 * The worker's ready line names its tasks; a worker with none says so and
 * warns that it parks everything it takes (an app module whose tasks live in
 * modules it does not import, as Celery's `include=[...]` layout gives).
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { logReady, type ReadyInfo } from "../src/worker/ready_log.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";

const INFO: ReadyInfo = {
  hostname: "w@box",
  inline: false,
  concurrency: 2,
  capacity: 128,
  queues: ["celery"],
  tasks: [],
  sandboxes: [],
};

/** The lines logReady logs for these tasks. */
async function readyLines(tasks: string[]): Promise<string[]> {
  const records = await captureLogs("info", ["celeriac", "worker"]);
  try {
    logReady({ ...INFO, tasks });
    return records.map(logLine);
  } finally {
    await reset();
  }
}

Deno.test("ready log: a worker without tasks says none and warns that it parks every message", async () => {
  // Was "…, queues celery, tasks " and nothing more: the worker then parked every message.
  const lines = await readyLines(["celery.chord_unlock", "celery.chain"]);
  assert.deepEqual(lines, [
    "info w@box ready: concurrency 2 (Web Workers, 128 task slots), queues celery, tasks none",
    "warning w@box has no tasks but Celery's built-ins: it parks what it takes as unregistered. " +
    "Define them with app.task() in the module the worker loads (--app), or import the modules " +
    "that do from it",
  ]);
});

Deno.test("ready log: a worker with tasks names them, without the warning", async () => {
  assert.deepEqual(await readyLines(["tasks.add", "celery.chain", "tasks.mul"]), [
    "info w@box ready: concurrency 2 (Web Workers, 128 task slots), queues celery, tasks tasks.add, tasks.mul",
  ]);
});
