/**
 * Retries on real transports (Redis and the embedded KV store): ctx.retry()
 * republishes the same task id, clients wait through RETRY, the retry
 * limit stores MaxRetriesExceededError (or the given exc), autoretryFor.
 */

import assert from "node:assert/strict";
import { TaskError } from "../mod.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { redisAndKv, withWorker } from "./helpers/worker.ts";

const { transports, cleanup } = await redisAndKv("retry");

async function failure(p: Promise<unknown>): Promise<TaskError> {
  const err = await p.then(() => null, (e) => e);
  assert.ok(err instanceof TaskError, `expected a TaskError, got ${err}`);
  return err;
}

for (const t of transports) {
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test(
      { name: `retry on ${t.name}: ${name}`, ignore: t.name === "redis" && WITHOUT_REDIS },
      fn,
    );

  for (const pool of ["threads", "inline"] as const) {
    test(`${pool} pool: a task retried twice keeps its id and the waiting client gets its result`, async () => {
      await withWorker(t, { pool }, async (client, worker) => {
        const r = await client.sendTask<Record<string, unknown>>("t.retry_twice", [7], {
          expires: 60,
          headers: { "x-custom": "kept" },
        });
        const v = await r.get({ timeout: 10_000 });
        assert.equal(v.n, 7);
        assert.equal(v.retries, 2);
        assert.equal(v.parentId, r.id, "a retry is a child of the task itself");
        assert.equal(typeof v.expires, "string", "expires survives retries");
        assert.equal(v.custom, "kept");
        assert.equal(worker.stats.retried, 2);
        assert.equal(worker.stats.succeeded, 1);
        const meta = await r.info();
        assert.equal(meta?.status, "SUCCESS");
        assert.equal(meta?.parent_id, r.id);
      });
    });
  }

  test("RETRY is stored with the exception and the task itself as child", async () => {
    await withWorker(t, {}, async (client) => {
      const backend = await client.resultBackend();
      const r = await client.sendTask("t.always_retry", [1]);
      let retry = null;
      for (let i = 0; i < 200 && !retry; i++) {
        const m = await backend.get(r.id);
        if (m?.status === "RETRY") retry = m;
        else await new Promise((res) => setTimeout(res, 5));
      }
      assert.equal(retry?.status, "RETRY");
      assert.equal(retry?.result, null, "ctx.retry() without exc stores null");
      assert.deepEqual(retry?.children, [[[r.id, null], null]]);
      assert.equal(retry?.date_done, null);
      assert.match(retry?.traceback ?? "", /^Retry: Retry in 0\.05s/);
      await failure(r.get({ timeout: 10_000 }));
    });
  });

  test("past maxRetries the task fails with Celery's MaxRetriesExceededError", async () => {
    await withWorker(t, {}, async (client, worker) => {
      const r = await client.sendTask("t.always_retry", [5]);
      const err = await failure(r.get({ timeout: 10_000 }));
      assert.equal(err.excType, "MaxRetriesExceededError");
      assert.equal(err.excModule, "celery.exceptions");
      assert.deepEqual(err.excMessage, [`Can't retry t.always_retry[${r.id}] args:(5,) kwargs:{}`]);
      assert.equal(worker.stats.retried, 1);
    });
  });

  test("past the limit, the exc given to ctx.retry() is the failure", async () => {
    await withWorker(t, {}, async (client) => {
      const err = await failure(client.sendTask("t.retry_gives_up", []).then((r) => r.get()));
      assert.equal(err.excType, "KeyError");
      assert.equal(err.excModule, "builtins");
      assert.deepEqual(err.excMessage, ["gave up"]);
    });
  });

  test("retry args replace the arguments; a swallowed Retry still retries", async () => {
    await withWorker(t, {}, async (client) => {
      const r = await client.sendTask<number>("t.retry_args", [0]);
      assert.equal(await r.get({ timeout: 10_000 }), 3);
      const s = await client.sendTask<string>("t.retry_swallowed", []);
      assert.equal(await s.get({ timeout: 10_000 }), "second run");
    });
  });

  test("autoretryFor retries a late-ack task, then stores the original error", async () => {
    await withWorker(t, {}, async (client, worker, queue) => {
      const r = await client.sendTask("t.autoretry", ["flaky"]);
      const err = await failure(r.get({ timeout: 10_000 }));
      assert.equal(err.excType, "TypeError");
      assert.deepEqual(err.excMessage, ["flaky"]);
      assert.equal(worker.stats.retried, 2);
      const broker = await client.broker();
      assert.equal(await broker.queueDepth(queue), 0);
      assert.equal(
        (await broker.listParked({ limit: 1000 })).filter((p) => p.taskId === r.id).length,
        0,
      );
    });
  });
}

Deno.test({ name: "retry: clean up", ignore: WITHOUT_REDIS }, async () => {
  await cleanup();
});
