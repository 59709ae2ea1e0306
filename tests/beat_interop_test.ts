/**
 * Beat interop with real Python Celery 5.2.6 on Redis: a Python worker runs
 * what Celeriac's beat sends, and a Celeriac worker runs what Python's
 * `celery beat` sends.
 */

import assert from "node:assert/strict";
import { interopWorker } from "./helpers/interop.ts";
import { celeryWorker, Proc, PYTHON, startBeatApp } from "./helpers/procs.ts";
import { deleteKeys, deleteResults, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function resultOf(id: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  const redis = await rawRedis();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const raw = await redis.get(`celery-task-meta-${id}`);
      if (raw) return JSON.parse(raw);
      if (Date.now() > deadline) throw new Error(`no result for ${id}`);
      await sleep(100);
    }
  } finally {
    await redis.quit();
  }
}

Deno.test({
  name: "beat interop: a Python Celery worker runs the tasks Celeriac's beat sends",
  ignore: WITHOUT_CELERY,
  async fn() {
    const queue = `beat-py-${crypto.randomUUID().slice(0, 8)}`;
    const ns = uniquePrefix("beat-interop");
    const env = { CELERY_BROKER_URL: REDIS_URL, CELERY_RESULT_BACKEND: REDIS_URL };
    const worker = await celeryWorker(["-P", "solo", "-Q", queue], env);
    const beat = startBeatApp("celeriac beat", ["--max-interval", "1"], {
      BEAT_BROKER: REDIS_URL,
      BEAT_NS: ns,
      BEAT_QUEUE: queue,
      BEAT_TASK: "py.echo",
    });
    const ids: string[] = [];
    try {
      await beat.waitFor(
        /Sending due task tick \(py\.echo\)[^]*Sending due task tick \(py\.echo\)/,
      );
      ids.push(
        ...[...beat.output.matchAll(/Sending due task tick \(py\.echo\) id ([0-9a-f-]{36})/g)]
          .map((m) => m[1]),
      );
      assert.match(
        beat.output,
        /entry "tick" sends task "py\.echo", which this app does not register/,
      );
      assert.equal(beat.output.match(/does not register/g)?.length, 1, "warned once per entry");
      for (const id of ids) {
        const meta = await resultOf(id);
        assert.equal(meta.status, "SUCCESS", JSON.stringify(meta));
        assert.deepEqual(meta.result, { args: [1], kwargs: {} });
      }
      assert.match(worker.output, /Task py\.echo\[[0-9a-f-]{36}\] succeeded/);
    } finally {
      await beat.stop();
      await worker.stop();
      await deleteResults(ids);
      await deleteKeys(ns);
      const redis = await rawRedis();
      await redis.del(queue);
      await redis.quit();
    }
  },
});

Deno.test({
  name: "beat interop: a Celeriac worker runs the tasks Python's celery beat sends",
  ignore: WITHOUT_CELERY,
  async fn() {
    const queue = `beat-ts-${crypto.randomUUID().slice(0, 8)}`;
    const dir = await Deno.makeTempDir({ prefix: "celeriac-pybeat-" });
    const worker = await interopWorker({ broker: REDIS_URL, backend: REDIS_URL }, queue);
    const beat = Proc.start("celery beat", PYTHON, [
      "-m",
      "celery",
      "-A",
      "pybeat",
      "beat",
      "-s",
      `${dir}/schedule`,
      "--max-interval",
      "1",
      "-l",
      "INFO",
    ], {
      env: {
        CELERY_BROKER_URL: REDIS_URL,
        INTEROP_QUEUE: queue,
        PYTHONPATH: `${ROOT}tests/interop`,
      },
      cwd: `${ROOT}tests/interop`,
    });
    const ids: string[] = [];
    try {
      await beat.waitFor(/Sending due task add-every-second[^]*Sending due task add-every-second/);
      await worker.waitFor(
        /Task tasks\.add\[[0-9a-f-]{36}\] received[^]*tasks\.add\[[0-9a-f-]{36}\] received/,
      );
      ids.push(
        ...[...worker.output.matchAll(/Task tasks\.add\[([0-9a-f-]{36})\] received/g)].map((m) =>
          m[1]
        ),
      );
      for (const id of ids) {
        const meta = await resultOf(id);
        assert.equal(meta.status, "SUCCESS", JSON.stringify(meta));
        assert.equal(meta.result, 5);
      }
    } finally {
      await beat.stop();
      await worker.stop();
      await deleteResults(ids);
      await Deno.remove(dir, { recursive: true });
      const redis = await rawRedis();
      await redis.del(queue);
      await redis.quit();
    }
  },
});
