/**
 * An outcome the structured clone refuses (a task linked to others whose
 * result is not stored hands its return value as it is): the pool's Web
 * Worker posts the other outcomes of its batch, the refused one settles as
 * a failure saying what to return instead, and the Web Worker lives on.
 * Before, the post threw out of the Web Worker's flush: it died and every
 * outcome of the batch was reported lost.
 */

import assert from "node:assert/strict";
import type { RunOutcome, RunRequest } from "../src/worker/executor.ts";
import { ThreadPool } from "../src/worker/thread_pool.ts";
import { messageRunRequest, nextSeq, poolRunRequest } from "./helpers/run_info.ts";

const APP = new URL("./apps/exit_app.ts", import.meta.url).href;

const LINK = {
  task: "x.wid",
  args: [],
  kwargs: {},
  options: {},
  subtask_type: null,
  immutable: false,
};

/** An errback sent as a message (`x.wid` takes one argument). */
const SENT_ERRBACK = { ...LINK, args: ["errback"] };
/** An errback Celery calls in-process (it takes the request), noting its call in `path`. */
function localErrback(path: string) {
  return { ...LINK, task: "x.note_errback", args: [path] };
}

/**
 * `x.unclonable` linked to `x.wid`, with both kinds of errbacks (the
 * in-process one noting its calls in `<path>.errbacks`), its result not
 * stored (so not encoded); `path` exists: it does not block.
 */
function unclonableRequest(path: string, proxy: boolean): RunRequest {
  return {
    ...messageRunRequest({
      task: "x.unclonable",
      id: crypto.randomUUID(),
      args: [path, proxy],
      kwargs: {},
      embed: { callbacks: [LINK], errbacks: [SENT_ERRBACK, localErrback(`${path}.errbacks`)] },
      now: new Date(),
      origin: "t@local",
      replyTo: "r",
    }),
    seq: nextSeq(),
    storeResult: false,
  };
}

/** Run `batch` on a one-thread pool, then `after` once their outcomes are in; every outcome and loss. */
async function runBatches(batch: RunRequest[], after: RunRequest[]) {
  const outcomes: RunOutcome[] = [];
  const lost: string[] = [];
  const expected = batch.length + after.length;
  const done = Promise.withResolvers<void>();
  const settled = () => outcomes.length + lost.length;
  const pool = new ThreadPool({ size: 1, slots: 4, module: APP, config: {} }, {
    onOutcomes: (o) => {
      outcomes.push(...o);
      if (settled() === batch.length) pool.run(after);
      if (settled() === expected) done.resolve();
    },
    onPublish: () => Promise.resolve(),
    onLost: (seqs, reason) => {
      lost.push(...seqs.map((s) => `${s}: ${reason}`));
      done.resolve();
    },
    onTimeLimit: () => {},
  });
  await pool.start();
  const timer = setTimeout(() => done.reject(new Error("outcomes missing after 15 s")), 15_000);
  try {
    pool.run(batch);
    await done.promise;
  } finally {
    clearTimeout(timer);
    await pool.close();
  }
  return { outcomes, lost };
}

Deno.test("unpostable outcome: refused in a batch, the others are posted and the Web Worker lives on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "unpostable-" });
  const path = `${dir}/go`;
  await Deno.writeTextFile(path, "");
  const unclonable = unclonableRequest(path, false);
  const other = poolRunRequest("x.wid", ["other"]);
  const next = poolRunRequest("x.wid", ["next"]);
  try {
    const { outcomes, lost } = await runBatches([unclonable, other], [next]);
    assert.deepEqual(lost, []);
    const bySeq = new Map(outcomes.map((o) => [o.seq, o]));
    assert.equal(bySeq.get(other.seq)?.ok, true, "the task that finished with it is posted");
    assert.equal(bySeq.get(next.seq)?.ok, true, "the same Web Worker runs the next task");
    const failed = bySeq.get(unclonable.seq);
    assert.equal(failed?.ok, false);
    assert.deepEqual(failed.exc, {
      exc_type: "EncodeError",
      exc_message: [
        "Cannot encode result.f: a function cannot be sent: pass the data it needs, or a task signature",
      ],
      exc_module: "celeriac",
    });
    assert.match(failed.traceback ?? "", /^EncodeError: Cannot encode result\.f/);
    // Its callbacks are not sent (no value), its errbacks sent as messages are; the one Celery
    // calls in-process is called here, with the failure (sent, it would get the task's id as its
    // request).
    assert.deepEqual(failed.followUp?.value, null);
    assert.deepEqual(failed.followUp?.embed.callbacks, [LINK]);
    assert.deepEqual(failed.followUp?.embed.errbacks, [SENT_ERRBACK]);
    // Before: never called.
    assert.equal(
      await Deno.readTextFile(`${path}.errbacks`).catch(() => "not called"),
      `${unclonable.id} EncodeError: Cannot encode result.f: a function cannot be sent: pass the ` +
        "data it needs, or a task signature\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unpostable outcome: alone, a value JSON encodes but the clone refuses fails with the clone's reason", async () => {
  const dir = await Deno.makeTempDir({ prefix: "unpostable-" });
  const path = `${dir}/go`;
  await Deno.writeTextFile(path, "");
  const unclonable = unclonableRequest(path, true);
  const next = poolRunRequest("x.wid", ["next"]);
  try {
    const { outcomes, lost } = await runBatches([unclonable], [next]);
    assert.deepEqual(lost, []);
    const settled = outcomes.map((o) => [o.seq, o.ok]);
    assert.deepEqual(settled, [[unclonable.seq, false], [next.seq, true]]);
    assert.equal(outcomes[0].exc?.exc_type, "EncodeError");
    assert.equal(
      outcomes[0].exc?.exc_message[0],
      "Cannot encode result: it cannot be handed from the Web Worker to the main thread, which sends " +
        "it to the task's linked tasks (#<Object> could not be cloned.): return plain data (objects, " +
        "arrays, strings, numbers, booleans, null)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
