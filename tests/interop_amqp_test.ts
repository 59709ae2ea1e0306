/**
 * The interop matrix on RabbitMQ, with real Python Celery 5.2.6 processes:
 * Python client → Celeriac worker, Celeriac client → Python worker, both
 * workers on one queue with every task run exactly once, and failures
 * re-raised on either side — with the rpc:// result backend and with Redis;
 * and Python's remote control (`celery inspect ping`) answered by a Celeriac
 * worker.
 *
 * The tests of each result backend share one Python (prefork, 2 processes) and one Celeriac
 * worker: each consumes the queue the two share and a queue of its own, where the other side's
 * client sends to it alone.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import {
  assertPythonFailures,
  assertSharedQueueRunsOnce,
  interopWorker,
  type PyOutcome,
  pythonCalls as callFromPython,
  pythonEnv,
  SHARED_PROCS,
  SharedProcs,
} from "./helpers/interop.ts";
import { celeryWorker, type Proc, PYTHON } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ignore = WITHOUT_CELERY || WITHOUT_RABBITMQ;
const prefix = uniquePrefix("interop-amqp");
const vhost = ignore ? null : await createVhost("interop");
/** The vhost name has no characters to escape, so Python and Celeriac read it alike. */
const BROKER = `amqp://guest:guest@127.0.0.1:5672/${vhost?.name}`;

function pyEnv(queue: string, backend: string): Record<string, string> {
  return pythonEnv({ broker: BROKER, backend }, queue);
}

function tsWorker(queue: string, backend: string, extra: string[] = []): Promise<Proc> {
  return interopWorker({ broker: BROKER, backend }, queue, extra);
}

/** Ids of tasks whose results may sit in Redis, deleted at the end. */
const taskIds: string[] = [];

async function pythonCalls(queue: string, backend: string, calls: unknown[]): Promise<PyOutcome[]> {
  const out = await callFromPython(pyEnv(queue, backend), calls);
  taskIds.push(...out.map((o) => o.id));
  return out;
}

Deno.test({
  name: "interop on RabbitMQ: Python's `celery inspect ping` is answered by a Celeriac worker",
  ignore,
}, async () => {
  // First in the file: the workers the later tests share would answer the ping too.
  const queue = `interop-ping-${crypto.randomUUID().slice(0, 8)}`;
  const app = new Celery({ broker: BROKER, backend: null, defaultQueue: queue });
  app.task("tests.noop", () => null);
  const worker = new Worker({ app, pool: "inline", concurrency: 1 });
  await worker.start();
  try {
    const out = await new Deno.Command(PYTHON, {
      args: ["-m", "celery", "-b", BROKER, "inspect", "ping", "-t", "3", "-j"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, `${text}\n${new TextDecoder().decode(out.stderr)}`);
    assert.deepEqual(JSON.parse(text), { [worker.hostname]: { ok: "pong" } });
  } finally {
    await worker.stop();
    await app.close();
  }
});

/** The workers of each backend, stopped by the clean-up test. */
const shared: SharedProcs<"py" | "ts">[] = [];

for (const backend of ["rpc://", REDIS_URL]) {
  const label = backend === "rpc://" ? "rpc backend" : "redis backend";
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({ name: `interop on RabbitMQ, ${label}: ${name}`, ignore, ...SHARED_PROCS }, fn);
  const tag = crypto.randomUUID().slice(0, 8);
  /** The Celeriac worker's own queue, the Python worker's, and the one they share. */
  const [tsQueue, pyQueue, sharedQueue] = ["ts", "py", "shared"].map((q) => `q-${q}-${tag}`);
  const workers = new SharedProcs(() => ({
    py: celeryWorker(
      ["-P", "prefork", "-c", "2", "-Q", `${sharedQueue},${pyQueue}`],
      pyEnv(pyQueue, backend),
    ),
    ts: tsWorker(`${sharedQueue},${tsQueue}`, backend, ["--prefetch", "2"]),
  }));
  shared.push(workers);

  test("a Python client calls Celeriac tasks and gets results and exceptions", async () => {
    const queue = tsQueue;
    await workers.get();
    const out = await pythonCalls(queue, backend, [
      { task: "tasks.add", args: [2, 3] },
      { task: "tasks.mul", kwargs: { x: 6, y: 7 } },
      { task: "tasks.echo", args: [1, 2.5, "h\u00e9llo", null, [1, "a"], { k: "v" }, 2n ** 70n] },
      { task: "tasks.fail", args: ["boom"] },
      { task: "tasks.add", args: [1, 2], options: { serializer: "msgpack" } },
      { task: "tasks.add", args: [3, 4], options: { compression: "zlib", priority: 5 } },
      { task: "tasks.add", args: [1, 1], options: { countdown: 1 } },
    ]);
    assert.equal(out[0].ok, 5);
    assert.equal(out[1].ok, 42);
    assert.deepEqual(out[2].ok, [1, 2.5, "h\u00e9llo", null, [1, "a"], { k: "v" }, 2n ** 70n]);
    assert.deepEqual(out[3].error, { type: "ValueError", module: "builtins", args: ["boom"] });
    assert.equal(out[4].ok, 3);
    assert.equal(out[5].ok, 7);
    assert.equal(out[6].ok, 2);
  });

  test("a Celeriac client calls Python tasks and gets typed results and TaskErrors", async () => {
    const queue = pyQueue;
    await workers.get();
    const app = new Celery({ broker: BROKER, backend, defaultQueue: queue });
    try {
      const mul = app.remoteTask<[number, number], number>("py.mul");
      const product = await mul.delay(6, 7);
      taskIds.push(product.id);
      assert.equal(await product.get({ timeout: 15_000 }), 42);
      // delay() from its second call on (the task's template) and a batch (one template).
      const again = [
        await mul.delay(2, 3),
        await mul.delay(4, 5),
        ...await mul.delayMany([[3, 3], [1, 7]]),
      ];
      taskIds.push(...again.map((r) => r.id));
      assert.deepEqual(await Promise.all(again.map((r) => r.get({ timeout: 15_000 }))), [
        6,
        20,
        9,
        7,
      ]);
      const echo = await app.sendTask("py.echo", [1, "x", 2n ** 70n], { kwargs: { k: [1, 2] } });
      assert.deepEqual(await echo.get({ timeout: 15_000 }), {
        args: [1, "x", 2n ** 70n],
        kwargs: { k: [1, 2] },
      });
      const failed = await app.sendTask("py.fail", ["boom"]);
      const custom = await app.sendTask("py.custom_fail", []);
      taskIds.push(echo.id, failed.id, custom.id);
      await assertPythonFailures(failed, custom);
    } finally {
      await app.close();
    }
  });

  test("a Python and a Celeriac worker share a queue and every task runs exactly once", async () => {
    const marker = `${prefix}marker-${crypto.randomUUID().slice(0, 8)}`;
    await workers.get();
    const app = new Celery({ broker: BROKER, backend, defaultQueue: sharedQueue });
    try {
      await assertSharedQueueRunsOnce(app, marker, 200, taskIds);
    } finally {
      await app.close();
    }
  });
}

Deno.test({ name: "interop on RabbitMQ: clean up", ignore, ...SHARED_PROCS }, async () => {
  await Promise.all(shared.map((w) => w.stop()));
  await deleteKeys(prefix);
  await deleteResults(taskIds);
  await vhost?.remove();
});
