/**
 * The worker's task log lines and get()'s errors say what happened: a task
 * revoked with terminate while running is not reported as "not run", and an
 * exception without arguments (SoftTimeLimitExceeded()) leaves no dangling
 * colon.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { captureLogs } from "./helpers/logs.ts";
import { TaskError } from "../mod.ts";
import { logLifecycle } from "../src/worker/lifecycle_log.ts";
import type { TaskRequest } from "../src/protocol/task_request.ts";

async function linesFor(
  events: Parameters<ReturnType<typeof logLifecycle>>[0][],
  withLevel = false,
): Promise<string[]> {
  const records = await captureLogs("info");
  try {
    const subscriber = logLifecycle(() => ["t.slow"]);
    for (const e of events) subscriber(e);
  } finally {
    await reset();
  }
  return records.map((r) => `${withLevel ? `${r.level} ` : ""}${r.message.join("")}`);
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

Deno.test("lifecycle log: an exception is logged as Celery's repr, without a dangling colon", async () => {
  const req = { task: "t.soft", id: "abc" } as TaskRequest;
  const exc = (exc_type: string, exc_message: unknown[]) => ({
    exc_type,
    exc_module: "billiard.exceptions",
    exc_message,
  });
  const failed = (e: ReturnType<typeof exc>, message: string) =>
    ({ type: "failed", seq: 1, req, cause: "raised", exc: e, message, outcome: {} }) as Parameters<
      ReturnType<typeof logLifecycle>
    >[0];
  const lines = await linesFor([
    failed(exc("SoftTimeLimitExceeded", []), ""),
    failed(exc("TimeLimitExceeded", [1]), "1"),
  ]);
  assert.deepEqual(lines, [
    "Task t.soft[abc] raised unexpected: SoftTimeLimitExceeded()",
    "Task t.soft[abc] raised unexpected: TimeLimitExceeded(1)",
  ]);
});

Deno.test("lifecycle log: a failure at ERROR with its traceback after it, a retry at INFO (Celery 5.2)", async () => {
  const req = { task: "t.x", id: "abc" } as TaskRequest;
  const exc = { exc_type: "ValueError", exc_module: "builtins", exc_message: ["bad 'x'"] };
  const traceback = "ValueError: bad 'x'\n    at inner (file:///app/tasks.ts:3:9)";
  const retry = { retries: 1, eta: new Date(), when: "in 1s", args: [], kwargs: {}, embed: {} };
  const lines = await linesFor([
    { type: "failed", seq: 1, req, cause: "raised", exc, message: "", outcome: { traceback } },
    { type: "retried", seq: 2, req, outcome: { exc: { ...exc, exc_type: "KeyError" }, retry } },
  ] as unknown as Parameters<ReturnType<typeof logLifecycle>>[0][], true);
  assert.deepEqual(lines, [
    `error Task t.x[abc] raised unexpected: ValueError("bad 'x'")\n${traceback}`,
    `info Task t.x[abc] retry: Retry in 1s: KeyError("bad 'x'")`,
  ]);
});

Deno.test("TaskError: an exception without arguments leaves no dangling colon", () => {
  const info = {
    exc_type: "SoftTimeLimitExceeded",
    exc_module: "billiard.exceptions",
    exc_message: [],
  };
  assert.equal(
    new TaskError("abc", "FAILURE", info, null).message,
    "Task abc failed: SoftTimeLimitExceeded",
  );
});
