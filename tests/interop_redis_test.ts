/**
 * Interop with real Python Celery 5.2.6 processes over Redis: Python client
 * → Celeriac worker, Celeriac client → Python worker, both workers on one
 * queue, and crash recovery in both directions.
 *
 * The first tests share one Python (prefork, 2 processes) and one Celeriac worker: each consumes
 * the queue the two share and a queue of its own, where the other side's client sends to it
 * alone. The result_extended and crash tests start workers of their own.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { ProtocolError } from "../protocol.ts";
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
import { celeryWorker, type Proc, runPython } from "./helpers/procs.ts";
import {
  deleteKeys,
  deleteResults,
  rawRedis,
  REDIS_URL,
  uniquePrefix,
  waitForList,
} from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const prefix = uniquePrefix("interop");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
const BACKEND = REDIS_URL;
const taskIds: string[] = [];

function tsWorker(queue: string, extra: string[] = [], broker = BROKER): Promise<Proc> {
  return interopWorker({ broker, backend: BACKEND }, queue, extra);
}

async function pythonCalls(queue: string, calls: unknown[]): Promise<PyOutcome[]> {
  const out = await callFromPython(pyEnv(queue), calls);
  taskIds.push(...out.map((o) => o.id));
  return out;
}

function pyEnv(queue: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ...pythonEnv({ broker: REDIS_URL, backend: BACKEND }, queue, prefix), ...extra };
}

function client(queue: string): Celery {
  return new Celery({ broker: BROKER, backend: BACKEND, defaultQueue: queue });
}

const tag = crypto.randomUUID().slice(0, 8);
/** The shared Celeriac worker's own queue, the Python worker's, and the one they share. */
const [tsQueue, pyQueue, sharedQueue] = ["ts", "py", "shared"].map((q) => `q-${q}-${tag}`);
const shared = new SharedProcs(() => ({
  py: celeryWorker(["-P", "prefork", "-c", "2", "-Q", `${sharedQueue},${pyQueue}`], pyEnv(pyQueue)),
  ts: tsWorker(`${sharedQueue},${tsQueue}`, ["--prefetch", "2"]),
}));

Deno.test({
  name: "interop: a Python client calls Celeriac tasks and gets results and exceptions",
  ignore: WITHOUT_CELERY,
  ...SHARED_PROCS,
}, async () => {
  const queue = tsQueue;
  const { ts: worker } = await shared.get();
  const out = await pythonCalls(queue, [
    { task: "tasks.add", args: [2, 3] },
    { task: "tasks.mul", kwargs: { x: 6, y: 7 } },
    {
      task: "tasks.echo",
      args: [1, 2.5, "h\u00e9llo \u2603", null, true, [1, "a"], { k: "v" }, 2n ** 70n],
    },
    { task: "tasks.fail", args: ["boom"] },
    { task: "tasks.add", args: [1, 2], options: { serializer: "msgpack" } },
    { task: "tasks.add", args: [3, 4], options: { compression: "zlib" } },
    { task: "tasks.add", args: [5, 6], options: { compression: "bzip2", priority: 9 } },
    { task: "tasks.add", args: [1, 1], options: { countdown: 1 } },
    { task: "no.such.task", args: [] },
    { task: "tasks.withdraw", args: [10, 30] },
  ]);
  assert.equal(out[0].ok, 5);
  assert.equal(out[1].ok, 42);
  assert.deepEqual(out[2].ok, [
    1,
    2.5,
    "h\u00e9llo \u2603",
    null,
    true,
    [1, "a"],
    { k: "v" },
    2n ** 70n,
  ]);
  assert.deepEqual(out[3].error, { type: "ValueError", module: "builtins", args: ["boom"] });
  assert.equal(out[4].ok, 3);
  assert.equal(out[5].ok, 7);
  assert.equal(out[6].ok, 11);
  assert.equal(out[7].ok, 2);
  assert.equal(out[8].error?.type, "NotRegistered");
  assert.equal(out[8].error?.module, "celery.exceptions");
  assert.match(worker.output, /Parked task no\.such\.task\[/);
  // `class InsufficientFunds extends Error {}` (name left "Error") was a plain Exception.
  assert.deepEqual(out[9].error, {
    type: "InsufficientFunds",
    module: "celery.exceptions",
    args: ["30 > 10"],
  });
});

Deno.test({
  name:
    "interop: a Python client with result_extended reads name, args, worker... of Celeriac results",
  ignore: WITHOUT_CELERY,
}, async () => {
  // Celeriac stored no result_extended fields: Python's r.name, r.args, r.worker were all None.
  const queue = `q-ext-${crypto.randomUUID().slice(0, 8)}`;
  const worker = await interopWorker({ broker: BROKER, backend: BACKEND }, queue, [], {
    CELERY_RESULT_EXTENDED: "true",
  });
  try {
    const out = await callFromPython(pyEnv(queue, { INTEROP_RESULT_EXTENDED: "1" }), [
      { task: "tasks.mul", kwargs: { x: 6, y: 7 } },
      { task: "tasks.fail", args: ["boom"] },
      { task: "tasks.retry_twice", args: [5] },
    ]);
    taskIds.push(...out.map((o) => o.id));
    const ext = (o: PyOutcome) => (o as PyOutcome & { extended: Record<string, unknown> }).extended;
    const hostname = /celeriac 0\.\d+\.\d+ (\S+):/.exec(worker.output)?.[1];
    assert.equal(out[0].ok, 42);
    assert.deepEqual(ext(out[0]), {
      name: "tasks.mul",
      args: [],
      kwargs: { x: 6, y: 7 },
      worker: hostname,
      retries: 0,
      queue,
    });
    assert.equal(out[1].error?.type, "ValueError");
    assert.deepEqual(ext(out[1]).args, ["boom"]);
    assert.equal(ext(out[1]).name, "tasks.fail");
    assert.deepEqual(out[2].ok, { n: 5, retries: 2 });
    assert.equal(ext(out[2]).retries, 2);
  } finally {
    await worker.stop();
  }
});

Deno.test(
  {
    name: "interop: Python sees Celeriac big integers exactly",
    ignore: WITHOUT_CELERY,
    ...SHARED_PROCS,
  },
  async () => {
    await shared.get();
    const app = client(tsQueue);
    const big = 2n ** 70n + 1n;
    const r = await app.sendTask("tasks.echo", [big]);
    taskIds.push(r.id);
    assert.deepEqual(await r.get({ timeout: 10_000 }), [big]);
    await app.close();
    const redis = await rawRedis();
    const raw = await redis.get(`celery-task-meta-${r.id}`);
    await redis.quit();
    assert.match(raw ?? "", /"result": \[1180591620717411303425\]/);
  },
);

Deno.test({
  name: "interop: a Celeriac client calls Python tasks and gets typed results and TaskErrors",
  ignore: WITHOUT_CELERY,
  ...SHARED_PROCS,
}, async () => {
  await shared.get();
  const app = client(pyQueue);
  try {
    const mul = app.remoteTask<[number, number], number>("py.mul");
    const r1 = await mul.delay(6, 7);
    const product: number = await r1.get({ timeout: 15_000 });
    assert.equal(product, 42);
    // delay() from its second call on: built from the template the app keeps for the task.
    const again = [await mul.delay(2, 3), await mul.delay(4, 5)];
    taskIds.push(...again.map((r) => r.id));
    assert.deepEqual(await Promise.all(again.map((r) => r.get({ timeout: 15_000 }))), [6, 20]);
    const r2 = await app.sendTask("py.echo", [
      1,
      "x",
      2n ** 70n,
      new Date("2026-01-02T03:04:05.600Z"),
    ], {
      kwargs: { k: [1, 2] },
    });
    assert.deepEqual(await r2.get({ timeout: 15_000 }), {
      args: [1, "x", 2n ** 70n, "2026-01-02T03:04:05.600000Z"],
      kwargs: { k: [1, 2] },
    });
    // A whole number past 2^53 is a double: Python got it as an int of other digits
    // (1152921504606847000 for 2 ** 60), and the echo came back as that bigint.
    const doubles = await app.sendTask("py.echo", [2 ** 60, -(2 ** 53 + 2), 1e16]);
    taskIds.push(doubles.id);
    assert.deepEqual(await doubles.get({ timeout: 15_000 }), {
      args: [2 ** 60, -(2 ** 53 + 2), 1e16],
      kwargs: {},
    });
    // A batch (one template for every message, one LPUSH): Python decodes each message.
    const echo = app.remoteTask<unknown[], { args: unknown[]; kwargs: unknown }>("py.echo");
    const batchArgs = [[1, "h\u00e9llo \u2603"], ['say "hi"', [1, { k: null }]], [], [2n ** 70n]];
    const batch = await echo.delayMany(batchArgs, { kwargs: { shared: "\u00e9" } });
    taskIds.push(...batch.map((r) => r.id));
    for (const [i, r] of batch.entries()) {
      assert.deepEqual(await r.get({ timeout: 15_000 }), {
        args: batchArgs[i],
        kwargs: { shared: "\u00e9" },
      });
    }
    const r3 = await app.sendTask("py.fail", ["boom"]);
    const r4 = await app.sendTask("py.custom_fail", []);
    taskIds.push(r1.id, r2.id, r3.id, r4.id);
    await assertPythonFailures(r3, r4);
    assert.equal(await r3.state(), "FAILURE");
  } finally {
    await app.close();
  }
});

Deno.test({
  name: "interop: a Python and a Celeriac worker share a queue and every task runs exactly once",
  ignore: WITHOUT_CELERY,
  ...SHARED_PROCS,
}, async () => {
  const marker = `${prefix}marker-shared`;
  await shared.get();
  const app = client(sharedQueue);
  try {
    await assertSharedQueueRunsOnce(app, marker, 300, taskIds);
  } finally {
    await app.close();
    // The tests after this one start workers of their own: these are not needed any more.
    await shared.stop();
  }
});

Deno.test({
  name:
    "interop: a task held by a SIGKILLed Celeriac worker is restored and run by a Python worker",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-kill-ts-${crypto.randomUUID().slice(0, 8)}`;
  const marker = `${prefix}marker-kill-ts`;
  const ts = await tsWorker(queue);
  const app = client(queue);
  try {
    const r = await app.sendTask<string>("tasks.record", [1, marker, 30]);
    taskIds.push(r.id);
    assert.deepEqual(await waitForList(`${marker}:started`, 1, 10_000), ["ts:1"]);
    ts.signal("SIGKILL");
    await ts.stop();
    // The Python worker restores orphans older than the visibility timeout once at start-up.
    await new Promise((r) => setTimeout(r, 2500));
    const py = await celeryWorker(
      ["-P", "solo", "-Q", queue],
      pyEnv(queue, { INTEROP_VISIBILITY: "2" }),
    );
    try {
      assert.equal(await r.get({ timeout: 30_000 }), "py:1");
      assert.deepEqual(await waitForList(marker, 1, 1000), ["py:1"]);
      assert.deepEqual(await waitForList(`${marker}:started`, 2, 1000), ["ts:1", "py:1"]);
    } finally {
      await py.stop();
    }
  } finally {
    await app.close();
  }
});

Deno.test({
  name:
    "interop: a live late-ack Celeriac task past the visibility timeout is not restored by Python",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-lease-${crypto.randomUUID().slice(0, 8)}`;
  const marker = `${prefix}marker-lease`;
  const ts = await tsWorker(queue, ["-c", "1"], `${BROKER}&visibility_timeout=2`);
  const app = client(queue);
  try {
    const r = await app.sendTask<string>("tasks.record", [3, marker, 6]);
    taskIds.push(r.id);
    assert.deepEqual(await waitForList(`${marker}:started`, 1, 10_000), ["ts:3"]);
    await new Promise((ok) => setTimeout(ok, 2500)); // older than the visibility timeout now
    // A Python worker restores unacknowledged messages older than the timeout at start-up.
    const py = await celeryWorker(
      ["-P", "solo", "-Q", queue],
      pyEnv(queue, { INTEROP_VISIBILITY: "2" }),
    );
    try {
      assert.equal(await r.get({ timeout: 30_000 }), "ts:3");
      await new Promise((ok) => setTimeout(ok, 1000));
      assert.deepEqual(await waitForList(`${marker}:started`, 1, 0), ["ts:3"], "run once");
    } finally {
      await py.stop();
    }
  } finally {
    await app.close();
    await ts.stop();
  }
});

Deno.test({
  name:
    "interop: a task held by a SIGKILLed Python worker is restored and run by a Celeriac worker",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-kill-py-${crypto.randomUUID().slice(0, 8)}`;
  const marker = `${prefix}marker-kill-py`;
  const py = await celeryWorker(["-P", "solo", "-Q", queue], pyEnv(queue));
  const app = client(queue);
  try {
    const r = await app.sendTask<string>("tasks.record", [2, marker, 30]);
    taskIds.push(r.id);
    assert.deepEqual(await waitForList(`${marker}:started`, 1, 15_000), ["py:2"]);
    py.signal("SIGKILL");
    await py.stop();
    const ts = await tsWorker(queue, [], `${BROKER}&visibility_timeout=2`);
    try {
      assert.equal(await r.get({ timeout: 30_000 }), "ts:2");
    } finally {
      await ts.stop();
    }
  } finally {
    await app.close();
  }
});

Deno.test({
  name: "interop: a SIGKILLed Celeriac worker's task is restored by a new Celeriac worker",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-kill-ts2-${crypto.randomUUID().slice(0, 8)}`;
  const marker = `${prefix}marker-kill-ts2`;
  const first = await tsWorker(queue);
  const app = client(queue);
  try {
    const r = await app.sendTask<string>("tasks.record", [3, marker, 30]);
    taskIds.push(r.id);
    await waitForList(`${marker}:started`, 1, 10_000);
    first.signal("SIGKILL");
    await first.stop();
    const second = await tsWorker(queue, [], `${BROKER}&visibility_timeout=2`);
    try {
      assert.equal(await r.get({ timeout: 30_000 }), "ts:3");
      assert.deepEqual(await waitForList(`${marker}:started`, 2, 1000), ["ts:3", "ts:3"]);
    } finally {
      await second.stop();
    }
  } finally {
    await app.close();
  }
});

Deno.test({ name: "interop: clean up keys", ignore: WITHOUT_CELERY, ...SHARED_PROCS }, async () => {
  await shared.stop(); // when the test that stops them was filtered out
  await deleteKeys(prefix);
  await deleteResults(taskIds);
});

Deno.test({
  name:
    "interop: a Python result stored with result_serializer msgpack fails get() at once, saying so",
  ignore: WITHOUT_CELERY,
}, async () => {
  // What Python's Redis backend stores with result_serializer = "msgpack": raw msgpack bytes, no
  // content type. Celeriac reads JSON results: get() waited for its whole timeout ("not ready").
  const store = (id: string) =>
    runPython("-c", [
      [
        "import os",
        "from celery import Celery",
        "app = Celery(backend=os.environ['CELERY_RESULT_BACKEND'])",
        "app.conf.result_serializer = 'msgpack'",
        `app.backend.store_result(${JSON.stringify(id)}, 42, 'SUCCESS')`,
      ].join("\n"),
    ], pyEnv("unused"));
  const app = client("unused");
  const before = crypto.randomUUID();
  const after = crypto.randomUUID();
  taskIds.push(before, after);
  try {
    await store(before);
    const waiting = app.asyncResult(after).get({ timeout: 15_000 });
    waiting.catch(() => {});
    await new Promise((r) => setTimeout(r, 300)); // subscribed: the result arrives as a message
    await store(after);
    for (
      const [id, got] of [[before, app.asyncResult(before).get({ timeout: 15_000 })], [
        after,
        waiting,
      ]] as const
    ) {
      const start = Date.now();
      await assert.rejects(got, (e: unknown) => {
        assert.ok(e instanceof ProtocolError, String(e));
        assert.equal(e.taskId, id);
        assert.match(e.message, /not JSON/);
        assert.match(e.message, /result_serializer/);
        return true;
      });
      assert.ok(Date.now() - start < 5_000, "not after the whole timeout");
    }
  } finally {
    await app.close();
  }
});
