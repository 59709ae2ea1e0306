/**
 * A task's `runtime` (the `task-succeeded` event's, the "succeeded in Ns"
 * log line's) spans what Celery 5.2.6's tracer times: from before the
 * `taskPrerun` signal to the end of the task, not its `onSuccess`,
 * `afterReturn` or `taskPostrun`. Measured with Celery 5.2.6 (`-P solo`,
 * a prerun handler sleeping 0.3 s, a task 0.2 s, task_success 0.5 s and
 * postrun 0.7 s): "succeeded in 0.5017s", event `runtime=0.5016776`.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { runTask } from "../src/worker/executor.ts";
import { messageRunRequest } from "./helpers/run_info.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

Deno.test("task runtime: covers the prerun signal, not onSuccess, afterReturn or postrun", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  app.on("taskPrerun", () => sleep(300));
  app.on("taskPostrun", () => sleep(700));
  app.task("rt.sleep", {
    onSuccess: () => sleep(500),
    afterReturn: () => sleep(400),
  }, async (ms: number) => {
    await sleep(ms);
    return ms;
  });
  const out = await runTask(
    app.tasks,
    messageRunRequest({
      task: "rt.sleep",
      id: crypto.randomUUID(),
      args: [200],
      kwargs: {},
      now: new Date(),
      origin: "x@y",
      replyTo: "",
    }),
    new AbortController().signal,
    { signals: app.signals },
  );
  assert.equal(out.ok, true);
  // Was the handler's 200 ms alone. The hooks after it would add 1.6 s.
  assert.ok(out.runtime >= 490, `runtime ${out.runtime} ms: the prerun signal's 300 ms too`);
  assert.ok(out.runtime < 1400, `runtime ${out.runtime} ms: without the hooks after the task`);
  // What the handler held its thread for is still the handler's alone (the prerun signal awaits).
  assert.ok(out.blocked! < 150, `blocked ${out.blocked} ms`);
});
