/**
 * Running an in-process worker on the test app (tests/apps/worker_app.ts)
 * against a broker and backend, and the Redis + KV transports most worker
 * tests run on.
 */

import { Celery } from "../../mod.ts";
import { Worker, type WorkerOptions } from "../../src/worker/worker.ts";
import { app as tasksApp } from "../apps/worker_app.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./redis.ts";

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
 * Start a worker (one Web Worker, 4 slots, unless `options` say otherwise)
 * on a fresh queue, run `fn` with a client app, then stop and close both.
 */
export async function withWorker(
  t: { broker: string; backend: string },
  options: Partial<WorkerOptions>,
  fn: (client: Celery, worker: Worker, queue: string) => Promise<void>,
  queue = `wq-${crypto.randomUUID().slice(0, 8)}`,
): Promise<void> {
  tasksApp.configure({ broker: t.broker, backend: t.backend, defaultQueue: queue });
  const client = new Celery({ broker: t.broker, backend: t.backend, defaultQueue: queue });
  const worker = new Worker({
    app: tasksApp,
    appModule: APP_MODULE,
    queues: [queue],
    concurrency: 1,
    prefetch: 4,
    ...options,
  });
  await worker.start();
  try {
    await fn(client, worker, queue);
  } finally {
    await worker.stop();
    await client.close();
    await tasksApp.close();
  }
}
