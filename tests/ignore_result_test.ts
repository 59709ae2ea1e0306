/**
 * `ignoreResult`, as Celery 5.2.6 has it: a handle of a task sent with it
 * knows (`ignored`) and its `get()` resolves at once with nothing (Celery's
 * `AsyncResult.ignored`: `get()` returns `None`); a task's own
 * `ignoreResult` is written into its messages (`ignore_result`, as
 * `Task.apply_async` does), so a Python worker stores no result of it either;
 * and such a task's failure is stored only with `storeErrorsEvenIfIgnored`
 * (Celery's `store_errors_even_if_ignored`), while a call's own
 * `ignoreResult` leaves failures stored, as in Celery's trace.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { celeryWorker } from "./helpers/procs.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_REDIS } from "./helpers/services.ts";

/** An app on Redis whose broker keys start with a prefix of its own, sending to `queue`. */
function redisApp(label: string) {
  const prefix = uniquePrefix(label);
  const queue = `${label}-${crypto.randomUUID().slice(0, 8)}`;
  const app = new Celery({
    broker: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`,
    backend: REDIS_URL,
    defaultQueue: queue,
  });
  return { app, prefix, queue };
}

Deno.test({
  name: "ignore result: get() of a call sent with ignoreResult resolves undefined without waiting",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { app, prefix } = redisApp("ignored-get");
  try {
    // No worker: a wait for a stored result would reach the timeout and throw TimeoutError.
    const one = await app.sendTask("nobody.runs", [], { ignoreResult: true });
    assert.equal(one.ignored, true);
    assert.equal(await one.get({ timeout: 20_000 }), undefined);
    const quiet = app.task("t.quiet", { ignoreResult: true }, () => 1);
    const fromTask = await quiet.delay();
    assert.equal(fromTask.ignored, true);
    assert.equal(await fromTask.get({ timeout: 20_000 }), undefined);
    const [many] = await quiet.delayMany([[]]);
    assert.equal(many.ignored, true);
    // The call's own option overrides its task's.
    assert.equal((await quiet.applyAsync([], { ignoreResult: false })).ignored, false);
    assert.equal((await app.sendTask("nobody.runs", [])).ignored, false);
    assert.equal(app.asyncResult(one.id).ignored, false);
  } finally {
    await app.close();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name:
    "ignore result: a task's own ignoreResult travels in its message: a Python worker stores nothing",
  ignore: WITHOUT_REDIS || WITHOUT_CELERY,
}, async () => {
  const { app, prefix, queue } = redisApp("ignored-py");
  // Served by Python's tasks.add; declared here with ignoreResult.
  const add = app.task("tasks.add", { ignoreResult: true }, (a: number, b: number) => a + b);
  const py = await celeryWorker(["-P", "solo", "-Q", queue], {
    CELERY_BROKER_URL: REDIS_URL,
    CELERY_RESULT_BACKEND: REDIS_URL,
    INTEROP_KEYPREFIX: prefix,
    INTEROP_QUEUE: queue,
  });
  const ids: string[] = [];
  try {
    const ignored = await add.delay(1, 2);
    ids.push(ignored.id);
    // One task at a time (solo): once the next has a result, the ignored one has run.
    const probe = await app.sendTask<number>("tasks.add", [2, 3]);
    ids.push(probe.id);
    assert.equal(await probe.get({ timeout: 30_000 }), 5);
    assert.equal(await app.asyncResult(ignored.id).state(), "PENDING");
  } finally {
    await py.stop();
    await app.close();
    await deleteResults(ids);
    await deleteKeys(prefix);
  }
});

Deno.test({
  name:
    "ignore result: a task with ignoreResult stores its failure only with storeErrorsEvenIfIgnored",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { app, prefix } = redisApp("ignored-fail");
  const boom = () => {
    throw new Error("boom");
  };
  const quiet = app.task("t.quiet_fail", { ignoreResult: true }, boom);
  const kept = app.task(
    "t.kept_fail",
    { ignoreResult: true, storeErrorsEvenIfIgnored: true },
    boom,
  );
  const loud = app.task("t.loud_fail", boom);
  const probe = app.task("t.probe", () => "done");
  const worker = new Worker({ app, concurrency: 1, pool: "inline" });
  const ids: string[] = [];
  try {
    await worker.start();
    const sent = [
      await quiet.delay(),
      await kept.delay(),
      await loud.applyAsync([], { ignoreResult: true }),
    ];
    ids.push(...sent.map((r) => r.id));
    // One task at a time: once the probe has a result, the three before it have run.
    const last = await probe.delay();
    ids.push(last.id);
    assert.equal(await last.get({ timeout: 30_000 }), "done");
    const states = await Promise.all(sent.map((r) => app.asyncResult(r.id).state()));
    assert.deepEqual(states, ["PENDING", "FAILURE", "FAILURE"]);
  } finally {
    await worker.stop();
    await app.close();
    await deleteResults(ids);
    await deleteKeys(prefix);
  }
});
