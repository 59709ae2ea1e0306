/**
 * `-j` is `--json`, as Celery 5.2.6 lists `-j, --json` for `inspect`,
 * `control` and `status` (scripts write `celery inspect stats -j`).
 */

import assert from "node:assert/strict";
import { runCli } from "./helpers/procs.ts";

Deno.test("cli: -j is --json for status, inspect and control, as in Celery", async () => {
  // It was "error: unknown option -j", exit 2.
  const env = { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "" };
  const runs = await Promise.all(
    [["status"], ["inspect", "stats"], ["control", "heartbeat"]].map((cmd) =>
      runCli([...cmd, "-j", "-t", "0.2", "-b", "kv://:memory:"], { env })
    ),
  );
  for (const [i, r] of runs.entries()) {
    assert.equal(r.code, 69, r.stderr);
    assert.equal(r.stdout.trim(), i === 2 ? "[]" : "{}", r.stdout);
  }
});
