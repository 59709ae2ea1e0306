/**
 * Retries across languages with real Python Celery 5.2.6 on Redis: a
 * waiting client sees the same thing whether a Python worker retries a
 * Python task or a Celeriac worker retries a Celeriac task.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { pyJsonLoads } from "../src/protocol/json.ts";
import {
  interopWorker,
  type PyOutcome,
  pythonCalls as callFromPython,
  pythonEnv,
} from "./helpers/interop.ts";
import { celeryWorker, type Proc } from "./helpers/procs.ts";
import { deleteKeys, deleteResults, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const prefix = uniquePrefix("interop-retry");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
const BACKEND = REDIS_URL;
const taskIds: string[] = [];

function tsWorker(queue: string): Promise<Proc> {
  return interopWorker({ broker: BROKER, backend: BACKEND }, queue, ["-c", "1"]);
}

async function pythonCalls(queue: string, calls: unknown[]): Promise<PyOutcome[]> {
  const out = await callFromPython(pyEnv(queue), calls);
  taskIds.push(...out.map((o) => o.id));
  return out;
}

function pyEnv(queue: string): Record<string, string> {
  return pythonEnv({ broker: REDIS_URL, backend: BACKEND }, queue, prefix);
}

Deno.test({
  name: "interop retry: a Celeriac client waits through a Python task's two retries",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-pyretry-${crypto.randomUUID().slice(0, 8)}`;
  const worker = await celeryWorker(["-P", "solo", "-Q", queue], pyEnv(queue));
  const app = new Celery({ broker: BROKER, backend: BACKEND, defaultQueue: queue });
  try {
    const r = await app.sendTask<{ n: number; retries: number }>("py.retry_twice", [4]);
    taskIds.push(r.id);
    assert.deepEqual(await r.get({ timeout: 20_000 }), { n: 4, retries: 2 });
    const meta = await r.info();
    assert.equal(meta?.parent_id, r.id, "Python's retry is a child of the task itself");
    assert.match(worker.output, /Task py\.retry_twice\[[^\]]+\] retry: Retry in 0\.2s/);
  } finally {
    await app.close();
    await worker.stop();
  }
});

Deno.test({
  name: "interop retry: a Python client waits through a Celeriac task's retries and sees " +
    "MaxRetriesExceededError",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-tsretry-${crypto.randomUUID().slice(0, 8)}`;
  const worker = await tsWorker(queue);
  try {
    const out = await pythonCalls(queue, [
      { task: "tasks.retry_twice", args: [4] },
      { task: "tasks.always_retry", args: [] },
    ]);
    assert.deepEqual(out[0].ok, { n: 4, retries: 2 });
    assert.deepEqual(out[1].error, {
      type: "MaxRetriesExceededError",
      module: "celery.exceptions",
      args: [`Can't retry tasks.always_retry[${out[1].id}] args:() kwargs:{}`],
    });
    const redis = await rawRedis();
    const raw = await redis.get(`celery-task-meta-${out[0].id}`);
    await redis.quit();
    const meta = pyJsonLoads(raw ?? "null") as Record<string, unknown>;
    assert.equal(meta.status, "SUCCESS");
    assert.equal(meta.parent_id, out[0].id, "as Celery: the retried run's parent is the task");
  } finally {
    await worker.stop();
  }
});

Deno.test({ name: "interop retry: clean up", ignore: WITHOUT_CELERY }, async () => {
  await deleteKeys(prefix);
  await deleteResults(taskIds);
});
