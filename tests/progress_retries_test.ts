/**
 * `onProgress` reports each state stored while it waits, once per store: a
 * task retried three times stores RETRY three times (the same meta each
 * time) and is reported three RETRYs, on Redis, KV and rpc://, while a
 * state read again (a re-check, a first read racing a notification) is not
 * reported twice.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

/** Run a task retried `n` times on an inline worker; the states its `onProgress` reported. */
async function retriedStates(broker: string, backend: string, n: number) {
  const app = new Celery({
    broker,
    backend,
    defaultQueue: `retries-${crypto.randomUUID().slice(0, 8)}`,
  });
  const flaky = app.task("t.flaky", { bind: true, maxRetries: n }, (ctx) => {
    if (ctx.retries < n) return ctx.retry({ countdown: 0.2 });
    return `done after ${ctx.retries}`;
  });
  const worker = new Worker({ app, concurrency: 1, pool: "inline" });
  const states: string[] = [];
  let id = "";
  try {
    await worker.start();
    const r = await flaky.delay();
    id = r.id;
    const value = await r.onProgress((u) => states.push(u.state), { timeout: 30_000 });
    assert.equal(value, `done after ${n}`);
  } finally {
    await worker.stop();
    await app.close();
  }
  return { states, id };
}

Deno.test(
  { name: "progress retries: each RETRY is reported — Redis", ignore: WITHOUT_REDIS },
  async () => {
    const prefix = uniquePrefix("retries");
    const broker = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
    let id = "";
    try {
      const got = await retriedStates(broker, REDIS_URL, 3);
      id = got.id;
      assert.deepEqual(got.states, ["RETRY", "RETRY", "RETRY"]);
    } finally {
      await deleteResults([id]);
      await deleteKeys(prefix);
    }
  },
);

Deno.test("progress retries: each RETRY is reported — KV", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-retries-" });
  try {
    const url = `kv://${dir}/q.db`;
    const { states } = await retriedStates(url, url, 3);
    assert.deepEqual(states, ["RETRY", "RETRY", "RETRY"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  { name: "progress retries: each RETRY is reported — rpc://", ignore: WITHOUT_RABBITMQ },
  async () => {
    const vhost = await createVhost("retries");
    try {
      const { states } = await retriedStates(vhost.url(), "rpc://", 3);
      assert.deepEqual(states, ["RETRY", "RETRY", "RETRY"]);
    } finally {
      await vhost.remove();
    }
  },
);
