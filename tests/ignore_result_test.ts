/**
 * `ignoreResult`, as Celery 5.2.6 has it: a handle of a task sent with it
 * knows (`ignored`) and its `get()` resolves at once with nothing (Celery's
 * `AsyncResult.ignored`: `get()` returns `None`); a task's own
 * `ignoreResult` is written into its messages (`ignore_result`, as
 * `Task.apply_async` does), those its signatures send too (chain steps, group
 * and chord members), so a Python worker stores no result of it either, while
 * a chord still joins its value (Celery 5.2.6 on Redis: the header member is
 * left PENDING, the body gets every value);
 * and such a task's failure is stored only with `storeErrorsEvenIfIgnored`
 * (Celery's `store_errors_even_if_ignored`), while a call's own
 * `ignoreResult` leaves failures stored, as in Celery's trace.
 */

import assert from "node:assert/strict";
import { Celery, chain, chord, GroupResult } from "../mod.ts";
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

/** What a case gets: an app on Redis (see redisApp), its queue, and ids whose results it deletes. */
interface RedisCase {
  app: Celery;
  queue: string;
  prefix: string;
  ids: string[];
}

/**
 * A case on Redis (and Python Celery when `python`): the app is closed, its
 * broker keys and the results of `ids` deleted after it.
 */
function redisTest(
  name: string,
  label: string,
  fn: (c: RedisCase) => Promise<void>,
  python = false,
): void {
  Deno.test({
    name: `ignore result: ${name}`,
    ignore: WITHOUT_REDIS || (python && WITHOUT_CELERY),
  }, async () => {
    const { app, prefix, queue } = redisApp(label);
    const ids: string[] = [];
    try {
      await fn({ app, queue, prefix, ids });
    } finally {
      await app.close();
      await deleteResults(ids);
      await deleteKeys(prefix);
    }
  });
}

/** A Python Celery solo worker (one task at a time) on the case's queue and broker keys. */
function pythonWorker(c: RedisCase) {
  return celeryWorker(["-P", "solo", "-Q", c.queue], {
    CELERY_BROKER_URL: REDIS_URL,
    CELERY_RESULT_BACKEND: REDIS_URL,
    INTEROP_KEYPREFIX: c.prefix,
    INTEROP_QUEUE: c.queue,
  });
}

redisTest(
  "a plain signature's handle is ignored as its task's delay() is; a chain's is not",
  "ignored-sighandle",
  async ({ app }) => {
    const quiet = app.task("t.quiet", { ignoreResult: true }, () => 1);
    const loud = app.task("t.loud", () => 2);
    // No worker: get() without a timeout resolves only because nothing is waited for.
    const fromTask = await quiet.s().applyAsync();
    assert.equal(fromTask.ignored, true);
    assert.equal(await fromTask.get(), undefined);
    assert.equal((await quiet.s().delay()).ignored, true);
    const own = await loud.s().set({ ignoreResult: true }).applyAsync();
    assert.equal(own.ignored, true);
    assert.equal(await own.get(), undefined);
    assert.equal((await loud.s().applyAsync([], { ignoreResult: true })).ignored, true);
    // The signature's own option overrides its task's.
    assert.equal((await quiet.s().set({ ignoreResult: false }).applyAsync()).ignored, false);
    assert.equal((await loud.s().applyAsync()).ignored, false);
    // As Celery's chain.apply_async: the last step's handle comes from freeze(), not ignored.
    assert.equal((await chain(loud.s(), quiet.si()).applyAsync()).ignored, false);
  },
);

redisTest(
  "get() of a call sent with ignoreResult resolves undefined without waiting",
  "ignored-get",
  async ({ app }) => {
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
  },
);

redisTest(
  "a task's own ignoreResult travels in its message: a Python worker stores nothing",
  "ignored-py",
  async (c) => {
    const { app, ids } = c;
    // Served by Python's tasks.add; declared here with ignoreResult.
    const add = app.task("tasks.add", { ignoreResult: true }, (a: number, b: number) => a + b);
    const py = await pythonWorker(c);
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
    }
  },
  true,
);

redisTest(
  "a task's ignoreResult travels in its signatures' messages: a Python worker stores nothing, its chord still joins",
  "ignored-sig",
  async (c) => {
    const { app, ids } = c;
    // Served by Python's tasks.add and tasks.tsum; add declared here with ignoreResult.
    const add = app.task("tasks.add", { ignoreResult: true }, (a: number, b: number) => a + b);
    const tsum = app.remoteTask<[number[]], number>("tasks.tsum");
    const py = await pythonWorker(c);
    try {
      const one = await add.s(1, 2).applyAsync();
      const first = await chain(add.s(2, 3), tsum.s()).applyAsync();
      const joined = await chord([add.s(1, 1), add.s(2, 2)], tsum.s()).applyAsync();
      const header = joined.parent;
      assert.ok(header instanceof GroupResult);
      const members = header.children.map((r) => r.id);
      const step = first.parent?.id;
      assert.ok(step !== undefined);
      ids.push(one.id, step, first.id, joined.id, ...members);
      // As Celery's: the chord's body gets the values of its ignored members.
      assert.equal(await joined.get({ timeout: 30_000 }), 6);
      // One task at a time (solo): once the probe has a result, everything before it has run.
      const probe = await app.sendTask<number>("tasks.tsum", [[2, 3]]);
      ids.push(probe.id);
      assert.equal(await probe.get({ timeout: 30_000 }), 5);
      const states = await Promise.all(
        [one.id, step, ...members].map((id) => app.asyncResult(id).state()),
      );
      assert.deepEqual(states, ["PENDING", "PENDING", "PENDING", "PENDING"]);
    } finally {
      await py.stop();
    }
  },
  true,
);

redisTest(
  "a chord whose header member's task has ignoreResult joins its value on a Celeriac worker",
  "ignored-chord",
  async ({ app, ids }) => {
    const quiet = app.task("t.quiet_add", { ignoreResult: true }, (a: number, b: number) => a + b);
    const loud = app.task("t.loud_add", (a: number, b: number) => a + b);
    const total = app.task("t.total", (xs: number[]) => xs.reduce((a, b) => a + b, 0));
    const worker = new Worker({ app, concurrency: 1, pool: "inline" });
    try {
      await worker.start();
      const joined = await chord([quiet.s(1, 1), loud.s(2, 2)], total.s()).applyAsync();
      const header = joined.parent;
      assert.ok(header instanceof GroupResult);
      ids.push(joined.id, ...header.children.map((r) => r.id));
      assert.equal(await joined.get({ timeout: 30_000 }), 6);
      const states = await Promise.all(header.children.map((r) => app.asyncResult(r.id).state()));
      assert.deepEqual(states, ["PENDING", "SUCCESS"]);
    } finally {
      await worker.stop();
    }
  },
);

redisTest(
  "a task with ignoreResult stores its failure only with storeErrorsEvenIfIgnored",
  "ignored-fail",
  async ({ app, ids }) => {
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
    }
  },
);
