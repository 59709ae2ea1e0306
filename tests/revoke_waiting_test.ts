/**
 * A task revoked (without terminate) after the worker handed it to its
 * pool, while it waits behind a task holding its thread, is not run: it is
 * stored REVOKED ('revoked') and acknowledged, as Celery's prefork worker
 * discards a revoked task still waiting for a process. On the threads pool
 * the waiting task is in its own message or in the holding task's; on the
 * inline pool it waits for an async `taskPrerun` listener.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Worker, type WorkerOptions } from "../src/worker/worker.ts";
import { app } from "./apps/revoke_wait_app.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { exists, until } from "./helpers/waits.ts";

const APP_MODULE = new URL("./apps/revoke_wait_app.ts", import.meta.url).href;
const redisPrefix = uniquePrefix("revoke-waiting");
const kvDir = await Deno.makeTempDir({ prefix: "celeriac-revoke-waiting-test-" });
const redisUrl = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(redisPrefix)}`;
const transports = [
  { name: "redis", url: redisUrl },
  { name: "kv", url: `kv://${kvDir}/broker.sqlite` },
];

async function stateAndError(client: Celery, id: string): Promise<unknown> {
  const err = await client.asyncResult(id).get({ timeout: 10_000 }).then(() => null, (e) => e);
  return {
    state: await client.asyncResult(id).state(),
    type: err?.excType ?? null,
    message: err?.excMessage ?? null,
  };
}

const REVOKED = { state: "REVOKED", type: "TaskRevokedError", message: ["revoked"] };

async function withWorker(
  url: string,
  options: Partial<WorkerOptions>,
  fn: (client: Celery, start: () => Promise<Worker>) => Promise<void>,
): Promise<void> {
  const queue = `rwq-${crypto.randomUUID().slice(0, 8)}`;
  app.configure({ broker: url, backend: url, defaultQueue: queue });
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  let worker: Worker | null = null;
  const start = async () => {
    worker = new Worker({
      app,
      appModule: APP_MODULE,
      queues: [queue],
      concurrency: 1,
      prefetch: 4,
      ...options,
    });
    await worker.start();
    return worker;
  };
  try {
    await fn(client, start);
  } finally {
    await (worker as Worker | null)?.stop();
    await client.close();
    await app.close();
  }
}

for (const t of transports) {
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test(
      { name: `revoke waiting on ${t.name}: ${name}`, ignore: t.name === "redis" && WITHOUT_REDIS },
      fn,
    );

  for (const together of [false, true]) {
    const how = together ? "in the same message as" : "sent after";
    test(`threads pool: a task ${how} one holding the Web Worker is not run`, async () => {
      const dir = await Deno.makeTempDir({ prefix: "celeriac-revoke-waiting-" });
      try {
        await withWorker(t.url, {}, async (client, start) => {
          // Sent before the worker starts, both come in one take and go in one message.
          const worker = together ? null : await start();
          const a = await client.sendTask<string>("rw.hold", [dir]);
          const b = await client.sendTask<string>("rw.quick", []);
          const w = worker ?? await start();
          await until("the holding task started", () => exists(`${dir}/started`), 20_000, 20);
          await until("both tasks reached the pool", () => w.stats.received === 2, 20_000, 20);
          w.revoke([b.id]);
          await Deno.writeTextFile(`${dir}/release`, "");
          assert.equal(await a.get({ timeout: 20_000 }), "released");
          assert.deepEqual(await stateAndError(client, b.id), REVOKED);
          assert.equal(w.stats.succeeded, 1);
          assert.equal(w.stats.revoked, 1);
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }

  test("inline pool: a task waiting for its taskPrerun listener is not run", async () => {
    await withWorker(t.url, { pool: "inline" }, async (client, start) => {
      const w = await start();
      const gate = Promise.withResolvers<void>();
      let waiting = false;
      const off = app.on("taskPrerun", async () => {
        waiting = true;
        await gate.promise;
      });
      try {
        const b = await client.sendTask<string>("rw.quick", []);
        await until("its taskPrerun listener runs", () => waiting, 20_000, 20);
        w.revoke([b.id]);
        gate.resolve();
        assert.deepEqual(await stateAndError(client, b.id), REVOKED);
        assert.equal(w.stats.succeeded, 0);
        assert.equal(w.stats.revoked, 1);
      } finally {
        off();
      }
    });
  });
}

Deno.test({
  name: "revoke waiting: clean up",
  ignore: WITHOUT_REDIS,
  fn: async () => {
    await deleteKeys(redisPrefix);
  },
});
globalThis.addEventListener("unload", () => Deno.removeSync(kvDir, { recursive: true }));
