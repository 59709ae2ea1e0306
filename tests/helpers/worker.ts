/**
 * Running an in-process worker on the test app (tests/apps/worker_app.ts)
 * against a broker and backend, and the Redis + KV transports most worker
 * tests run on.
 */

import assert from "node:assert/strict";
import { Celery, TaskError } from "../../mod.ts";
import { Worker, type WorkerOptions } from "../../src/worker/worker.ts";
import { app as tasksApp } from "../apps/worker_app.ts";
import { createVhost } from "./rabbitmq.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./services.ts";

const APP_MODULE = new URL("../apps/worker_app.ts", import.meta.url).href;

/** A broker and a result backend, with a label for test names. */
export interface Transport {
  name: string;
  broker: string;
  backend: string;
}

/** Redis (under a key prefix of its own) and a KV file in a temp dir; `cleanup` removes both. */
export async function redisAndKv(label: string): Promise<{
  transports: Transport[];
  redisPrefix: string;
  kvDir: string;
  cleanup(): Promise<void>;
}> {
  const redisPrefix = uniquePrefix(label);
  const kvDir = await Deno.makeTempDir({ prefix: `celeriac-${label}-test-` });
  const redis = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(redisPrefix)}`;
  const kv = `kv://${kvDir}/broker.sqlite`;
  return {
    transports: [
      { name: "redis", broker: redis, backend: redis },
      { name: "kv", broker: kv, backend: kv },
    ],
    redisPrefix,
    kvDir,
    cleanup: async () => {
      await deleteKeys(redisPrefix);
      await Deno.remove(kvDir, { recursive: true });
    },
  };
}

/**
 * The transports of {@linkcode redisAndKv} and RabbitMQ (a vhost of its own,
 * results in Redis under the same key prefix), each with `ignore` set when a
 * server it needs is not there; `cleanup` removes the keys, the KV file and
 * the vhost.
 */
export async function redisKvAndRabbitMq(label: string): Promise<{
  all: (Transport & { ignore: boolean })[];
  transports: Transport[];
  cleanup(): Promise<void>;
}> {
  const { transports, cleanup } = await redisAndKv(label);
  const vhost = WITHOUT_RABBITMQ ? null : await createVhost(label);
  return {
    all: [
      ...transports.map((t) => ({ ...t, ignore: t.name === "redis" && WITHOUT_REDIS })),
      {
        name: "rabbitmq",
        broker: vhost?.url() ?? "",
        backend: transports[0].backend,
        ignore: WITHOUT_RABBITMQ || WITHOUT_REDIS,
      },
    ],
    transports,
    cleanup: async () => {
      if (!WITHOUT_REDIS) await cleanup();
      await vhost?.remove();
    },
  };
}

/**
 * Configure `app` (whose module is `appModule`) for `config` on `queue`,
 * start a worker on it (one Web Worker unless `options` say otherwise), run
 * `fn` with a client app, then stop and close all three.
 *
 * @example
 * ```ts ignore
 * await withAppWorker(app, APP_MODULE, { broker, backend }, { prefetch: 4 }, async (client) => {
 *   await (await client.sendTask("t.add", [1, 2])).get();
 * }, "my-queue");
 * ```
 */
export async function withAppWorker(
  app: Celery,
  appModule: string,
  config: { broker: string; backend: string; visibilityTimeout?: number },
  options: Partial<WorkerOptions>,
  fn: (client: Celery, worker: Worker, queue: string) => Promise<void>,
  queue: string,
): Promise<void> {
  app.configure({ ...config, defaultQueue: queue });
  const client = new Celery({ ...config, defaultQueue: queue });
  const worker = new Worker({ app, appModule, queues: [queue], concurrency: 1, ...options });
  await worker.start();
  try {
    await fn(client, worker, queue);
  } finally {
    await worker.stop();
    await client.close();
    await app.close();
  }
}

/**
 * Start a worker (one Web Worker, 4 slots, unless `options` say otherwise)
 * on a fresh queue, run `fn` with a client app, then stop and close both.
 */
export function withWorker(
  t: { broker: string; backend: string },
  options: Partial<WorkerOptions>,
  fn: (client: Celery, worker: Worker, queue: string) => Promise<void>,
  queue = `wq-${crypto.randomUUID().slice(0, 8)}`,
): Promise<void> {
  const config = { broker: t.broker, backend: t.backend };
  return withAppWorker(tasksApp, APP_MODULE, config, { prefetch: 4, ...options }, fn, queue);
}

/** The `TaskError` a task's result rejects with (any other end fails the test). */
export async function taskFailure(p: Promise<unknown>): Promise<TaskError> {
  const err = await p.then(() => null, (e) => e);
  assert.ok(err instanceof TaskError, `expected a TaskError, got ${err}`);
  return err;
}
