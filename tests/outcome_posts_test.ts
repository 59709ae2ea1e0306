/**
 * A refused outcome's failure is posted once its in-process errbacks have
 * run, asynchronously: a post that throws then (the port closing) used to
 * be an unhandled rejection, which ends the Web Worker with every task it
 * holds. It is now reported.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { keepErrbackCall } from "../src/worker/errbacks.ts";
import { postOutcomes } from "../src/worker/outcome_posts.ts";
import type { RunOutcome } from "../src/worker/run_types.ts";

Deno.test("outcome posts: a post that throws after the errbacks ran is reported, not an unhandled rejection", async () => {
  const app = new Celery();
  app.task("x.errback", (_request: unknown, _exc: unknown, _traceback: unknown) => {});
  const errback = {
    task: "x.errback",
    args: [],
    kwargs: {},
    options: {},
    subtask_type: null,
    immutable: false,
  };
  const outcome: RunOutcome = {
    seq: 7,
    ok: true,
    runtime: 0,
    blocked: 0,
    followUp: {
      embed: { callbacks: null, errbacks: [errback], chain: null, chord: null, group: null },
      value: { f: () => 1 },
    },
  } as unknown as RunOutcome;
  const ran = Promise.withResolvers<void>();
  keepErrbackCall(outcome, () => {
    ran.resolve();
    return Promise.resolve();
  });
  const posted: RunOutcome[][] = [];
  postOutcomes([outcome], (batch) => {
    posted.push(batch);
    if (batch[0].ok) throw new DOMException("a function cannot be cloned", "DataCloneError");
    throw new Error("the port is closed");
  }, app.tasks as never);
  await ran.promise;
  // Before: the rejection of the post failed this test as uncaught.
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(posted.map((b) => b.map((o) => [o.seq, o.ok])).at(-1), [[7, false]]);
});
