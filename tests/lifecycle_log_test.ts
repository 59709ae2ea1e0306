/**
 * The worker's task log lines say what happened: a task revoked with
 * terminate while running is not reported as "not run".
 */

import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { logLifecycle } from "../src/worker/lifecycle_log.ts";
import type { TaskRequest } from "../src/protocol/task_request.ts";

async function linesFor(
  events: Parameters<ReturnType<typeof logLifecycle>>[0][],
): Promise<string[]> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r) => records.push(r) },
    loggers: [
      { category: ["celeriac"], lowestLevel: "info", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["mem"] },
    ],
  });
  try {
    const subscriber = logLifecycle(() => ["t.slow"]);
    for (const e of events) subscriber(e);
  } finally {
    await reset();
  }
  return records.map((r) => r.message.join(""));
}

Deno.test("lifecycle log: a revoked task was not run, a terminated one was stopped running", async () => {
  const req = { task: "t.slow", id: "abc" } as TaskRequest;
  const lines = await linesFor([
    { type: "revoked", req, reason: "revoked", atIntake: true },
    { type: "revoked", req, reason: "terminated", atIntake: false, seq: 1 },
  ]);
  assert.deepEqual(lines, [
    "Task t.slow[abc] revoked: not run",
    "Task t.slow[abc] terminated while running (revoked with terminate)",
  ]);
});
