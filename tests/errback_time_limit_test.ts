/**
 * Celery calls a failed task's in-process errbacks in the task's process,
 * under its time limits. Here the handler's finish was noted before they
 * ran, so its hard limit no longer applied: an errback that never returned
 * left the task without an outcome, a time-limit report or a loss, for
 * good. Its finish is now noted after its errbacks.
 */

import assert from "node:assert/strict";
import type { RunOutcome, RunRequest } from "../src/worker/executor.ts";
import { ThreadPool } from "../src/worker/thread_pool.ts";
import { messageRunRequest, nextSeq } from "./helpers/run_info.ts";
import { exists, until } from "./helpers/waits.ts";

const APP = new URL("./apps/exit_app.ts", import.meta.url).href;

Deno.test("threads pool: the hard time limit covers a failed task's in-process errback that hangs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "errback-limit-" });
  const outcomes: RunOutcome[] = [];
  const limited: number[] = [];
  const lost: number[] = [];
  const pool = new ThreadPool({ size: 1, slots: 4, module: APP, config: {} }, {
    onOutcomes: (o) => outcomes.push(...o),
    onPublish: () => Promise.resolve(),
    onLost: (seqs) => lost.push(...seqs),
    onTimeLimit: (seq) => limited.push(seq),
  });
  await pool.start();
  try {
    const errback = {
      task: "x.hang_errback",
      args: [`${dir}/errback`],
      kwargs: {},
      options: {},
      subtask_type: null,
      immutable: false,
    };
    const req: RunRequest = {
      ...messageRunRequest({
        task: "x.fails",
        id: crypto.randomUUID(),
        args: [],
        kwargs: {},
        embed: { errbacks: [errback] },
        now: new Date(),
        origin: "t@local",
        replyTo: "r",
      }),
      seq: nextSeq(),
      storeResult: false,
      timeLimits: { hard: 1, soft: null },
    };
    pool.run([req]);
    // Before: timed out, nothing ever reported.
    await until("the task settled", () => outcomes.length + limited.length + lost.length > 0);
    assert.ok(exists(`${dir}/errback`), "the errback started");
    assert.deepEqual(limited, [req.seq]);
    assert.deepEqual(outcomes, []);
  } finally {
    await pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});
