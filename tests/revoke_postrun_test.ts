/**
 * A task revoked while its `taskPrerun` listeners run (the executor's second
 * revoke check, just before the handler) is not run, and a `taskPostrun`
 * (state `REVOKED`) follows the `taskPrerun` it had: every prerun has its
 * postrun, as in Celery's tracer.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { encodeTaskMessage } from "../protocol.ts";
import { type RunRequest, runTask } from "../src/worker/executor.ts";
import { runInfo } from "./helpers/run_info.ts";

Deno.test("revoke during taskPrerun: not run, and taskPostrun follows with state REVOKED", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  let ran = false;
  app.task("rp.work", () => {
    ran = true;
  });
  const seen: string[] = [];
  let revoked = false;
  app.on("taskPrerun", () => {
    seen.push("prerun");
    revoked = true; // the revoke arrives while the listeners run
  });
  app.on("taskPostrun", (p) => {
    seen.push(`postrun:${p.state}`);
  });
  const id = crypto.randomUUID();
  const msg = encodeTaskMessage({
    task: "rp.work",
    id,
    args: [],
    kwargs: {},
    now: new Date(),
    origin: "test@local",
    replyTo: "r",
  });
  const req: RunRequest = {
    seq: 1,
    task: "rp.work",
    id,
    body: msg.body,
    contentType: msg.contentType,
    contentEncoding: msg.contentEncoding,
    headers: msg.headers,
    storeResult: true,
    info: runInfo({ rootId: id }),
  };
  const outcome = await runTask(app.tasks, req, new AbortController().signal, {
    signals: app.signals,
    revoked: () => revoked,
  });
  assert.equal(outcome.revoked, true);
  assert.equal(ran, false);
  assert.deepEqual(seen, ["prerun", "postrun:REVOKED"]);
  await app.close();
});
