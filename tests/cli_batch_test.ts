/**
 * helpers/cli_batch.ts: the cases of one batch share a process, not an
 * app: a case whose --app module the case before configured (with -b and
 * --backend) gets the app its own flags and environment make.
 */

import assert from "node:assert/strict";
import { runCliCases } from "./helpers/cli_batch.ts";

const TASKS = "./tests/interop/tasks.ts";
const NOWHERE = "redis://127.0.0.1:1/0";
const UNSET = { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "" };

Deno.test("cli batch: a case does not get the app the case before configured", async () => {
  // Before: the module was imported once per batch, so B ran with A's broker (69, not 70).
  const a = {
    args: ["call", "tasks.add", "--app", TASKS, "-b", NOWHERE, "--backend", NOWHERE],
    env: UNSET,
  };
  const b = {
    args: ["call", "tasks.add", "--app", TASKS],
    env: { ...UNSET, CELERY_BROKER_URL: "foo://x" },
  };
  const [alone] = await runCliCases([b]);
  const [first, after] = await runCliCases([a, b]);
  assert.equal(alone.code, 70, alone.err);
  assert.equal(first.code, 69, first.err);
  assert.equal(after.code, alone.code, after.err);
  assert.match(after.err, /Unsupported broker URL "foo:/);
});
