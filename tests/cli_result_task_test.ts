/**
 * `result -t/--task NAME ID`, as Celery's `celery result -t tasks.add ID`:
 * `-t` followed by what is not a number is the task name (Celery's), and a
 * number the timeout in seconds (Celeriac's); `--task NAME` is accepted.
 */

import assert from "node:assert/strict";
import { openKvBackend } from "../src/backend/kv.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { runCli } from "./helpers/procs.ts";

Deno.test("cli result: -t NAME and --task NAME are Celery's task name; -t N stays the timeout", async () => {
  // `result -t tasks.add ID` said "--timeout needs a number", exit 2; --task was refused.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-result-task-" });
  const url = `kv://${dir}/b.sqlite`;
  try {
    const id = "7b0f5a3e-1d2c-4b5a-9e8f-0a1b2c3d4e5f";
    const backend = await openKvBackend(url);
    const meta = encodeResultMeta({
      taskId: id,
      status: "SUCCESS",
      result: 4,
      dateDone: new Date(),
    });
    await backend.store([{ taskId: id, status: "SUCCESS", meta }]);
    await backend.close();
    const env = { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "" };
    const flags = ["-b", url, "--backend", url];
    const [short, long, timeout, unknown, remote, unknownThenTimeout] = await Promise.all([
      runCli(["result", "-t", "t.add", id, ...flags], { env }),
      runCli(["result", "--task", "t.add", id, ...flags], { env }),
      runCli(["result", "-t", "5", id, ...flags], { env }),
      runCli(["result", "-t", "t.nope", id, ...flags, "--app", "tests/apps/worker_app.ts"], {
        env,
      }),
      // A task declared with app.remoteTask was refused: only tasks with a handler counted.
      runCli(["result", "-t", "py.mul", id, ...flags, "--app", "tests/apps/remote_task_app.ts"], {
        env,
      }),
      // `-t NAME … --timeout N`: parseArgs kept only the last value, the name was lost unchecked.
      runCli(
        [
          "result",
          "-t",
          "t.nope",
          id,
          "--timeout",
          "5",
          ...flags,
          "--app",
          "tests/apps/worker_app.ts",
        ],
        { env },
      ),
    ]);
    for (const r of [short, long, timeout, remote]) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "4");
    }
    for (const r of [unknown, unknownThenTimeout]) {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /result -t\/--task t\.nope: the app has no such task/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
