/**
 * Autoscale on Redis: a `worker.ts --autoscale 3,1` process grows to 3 Web
 * Workers under a burst and back to 1 after a short keep-alive; `stats`
 * shows Celery's `autoscaler` field; `app.control.autoscale` moves the range
 * and the pool with it; `pool_grow` is refused as Celery refuses it. Then
 * real Python Celery 5.2.6's `celery control autoscale` prints for a
 * Celeriac worker what it prints for a Python one (prefork, `--autoscale`),
 * and for a worker without autoscale, the same error.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { CeleryCliSession } from "./helpers/interop.ts";
import { celeriacWorker, celeryWorker } from "./helpers/procs.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_REDIS } from "./helpers/services.ts";
import { withWorker } from "./helpers/worker.ts";
import { app as interopApp } from "./interop/tasks.ts";
import { Worker, type WorkerOptions } from "../src/worker/worker.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const INTEROP_APP = new URL("./interop/tasks.ts", import.meta.url).href;
const prefix = uniquePrefix("autoscale");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
const taskIds: string[] = [];

function workerArgs(queue: string, node: string, extra: string[]): string[] {
  return [
    "--app",
    "./tests/interop/tasks.ts",
    "--broker",
    BROKER,
    "--backend",
    REDIS_URL,
    "-Q",
    queue,
    "-n",
    node,
    "--loglevel",
    "INFO",
    ...extra,
  ];
}

type Autoscaler = { max: number; min: number; current: number; qty: number };

async function stats(app: Celery, node: string): Promise<Record<string, unknown>> {
  const replies = await app.control.inspect({ timeout: 3, destination: [node] }).stats();
  assert.ok(replies[node], `no stats reply from ${node}`);
  return replies[node];
}

/** Poll `stats` until the autoscaler's `current` is `n`; returns every reading seen. */
async function until(app: Celery, node: string, n: number, ms: number): Promise<Autoscaler[]> {
  const seen: Autoscaler[] = [];
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const a = (await stats(app, node)).autoscaler as Autoscaler;
    seen.push(a);
    if (a.current === n) return seen;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`the pool did not reach ${n} Web Worker(s): ${JSON.stringify(seen.slice(-3))}`);
}

Deno.test({
  name: "autoscale on redis: --autoscale 3,1 grows under a burst and shrinks after the keep-alive",
  ignore: WITHOUT_REDIS,
}, async () => {
  const queue = `q-as-${crypto.randomUUID().slice(0, 8)}`;
  const node = `as-${queue}@test`;
  const worker = await celeriacWorker(
    workerArgs(queue, node, ["--autoscale", "3,1", "--autoscale-keepalive", "1"]),
  );
  const app = new Celery({ broker: BROKER, backend: REDIS_URL, defaultQueue: queue });
  try {
    const idle = await stats(app, node);
    assert.deepEqual(idle.autoscaler, { max: 3, min: 1, current: 1, qty: 0 });
    assert.equal((idle.pool as Record<string, unknown>)["max-concurrency"], 1, "starts at min");

    const burst = await Promise.all(
      Array.from({ length: 8 }, () => app.sendTask<string>("tasks.sleep", [3])),
    );
    taskIds.push(...burst.map((r) => r.id));
    const growing = await until(app, node, 3, 15_000);
    assert.ok(growing.at(-1)!.qty > 1, `tasks held while grown: ${JSON.stringify(growing)}`);
    assert.ok(growing.every((a) => a.current <= 3), "never past max");
    await worker.waitFor(/Scaling up \d Web Worker\(s\)/);
    const pool = (await stats(app, node)).pool as Record<string, unknown>;
    assert.equal((pool.processes as number[]).length, 3);

    for (const r of burst) assert.equal(await r.get({ timeout: 30_000 }), "slept");
    await until(app, node, 1, 15_000);
    await worker.waitFor(/Scaling down 2 Web Worker\(s\)/);

    // The range moves, and the pool with it at once (min 2 > 1 Web Worker).
    const moved = await app.control.autoscale(4, 2, { timeout: 3, destination: [node] });
    assert.deepEqual(moved, [{ [node]: { ok: "autoscale now max=4 min=2" } }]);
    assert.deepEqual((await stats(app, node)).autoscaler, { max: 4, min: 2, current: 2, qty: 0 });
    const bad = await app.control.autoscale(1, 2, { timeout: 3, destination: [node] });
    assert.match(String(bad[0][node].error), /max >= min >= 0/);

    assert.deepEqual(await app.control.poolGrow(1, { timeout: 3, destination: [node] }), [{
      [node]: {
        error: "pool_grow is not supported with autoscale. Adjust autoscale range instead.",
      },
    }]);
  } finally {
    await app.close();
    await worker.stop();
  }
});

Deno.test({
  name: "autoscale on redis: with one task per Web Worker (--prefetch-multiplier 1), full takes " +
    "still grow the pool",
  ignore: WITHOUT_REDIS,
}, async () => {
  const queue = `q-as-pm1-${crypto.randomUUID().slice(0, 8)}`;
  const node = `as-pm1-${queue}@test`;
  const worker = await celeriacWorker(
    workerArgs(queue, node, ["--autoscale", "3,1", "--prefetch-multiplier", "1"]),
  );
  const app = new Celery({ broker: BROKER, backend: REDIS_URL, defaultQueue: queue });
  try {
    const burst = await Promise.all(
      Array.from({ length: 6 }, () => app.sendTask<string>("tasks.sleep", [2])),
    );
    taskIds.push(...burst.map((r) => r.id));
    // The window holds one task per Web Worker, so tasks never outnumber Web Workers; a take
    // that got all it asked for says more wait on the broker.
    const seen = await until(app, node, 3, 15_000);
    assert.ok(
      seen.every((a) => a.qty <= a.current),
      `one task per Web Worker: ${JSON.stringify(seen)}`,
    );
    for (const r of burst) assert.equal(await r.get({ timeout: 30_000 }), "slept");
  } finally {
    await app.close();
    await worker.stop();
  }
});

Deno.test({
  name: "autoscale on redis: a worker without it answers Celery's error, and --autoscale needs " +
    "the threads pool",
  ignore: WITHOUT_REDIS,
}, async () => {
  const queue = `q-as-off-${crypto.randomUUID().slice(0, 8)}`;
  const node = `as-off-${queue}@test`;
  // A usage error, refused before connecting: checked while the worker below answers.
  const inlineRun = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "worker.ts",
      ...workerArgs(queue, node, ["-P", "inline", "--autoscale", "3"]),
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  try {
    // The reply is the remote control's, not the CLI's: an in-process worker answers it.
    await withWorker({ broker: BROKER, backend: REDIS_URL }, { hostname: node }, async (app) => {
      assert.deepEqual(await app.control.autoscale(3, 1, { timeout: 3, destination: [node] }), [{
        [node]: { error: "ValueError('Autoscale not enabled')" },
      }]);
      assert.equal((await stats(app, node)).autoscaler, undefined, "no autoscaler field");
    }, queue);
  } finally {
    await inlineRun;
  }
  const inline = await inlineRun;
  const text = new TextDecoder().decode(inline.stderr) + new TextDecoder().decode(inline.stdout);
  assert.equal(inline.code, 2, "a usage error, refused before connecting");
  assert.match(text, /--autoscale grows and shrinks Web Workers, which -P inline has none of/);
});

function pyEnv(queue: string): Record<string, string> {
  return {
    CELERY_BROKER_URL: REDIS_URL,
    CELERY_RESULT_BACKEND: REDIS_URL,
    INTEROP_KEYPREFIX: prefix,
    INTEROP_QUEUE: queue,
    PYTHONPATH: `${ROOT}tests/interop`,
  };
}

/** `celery -A pytasks control autoscale ...` against one node; node names replaced by NODE. */
async function celeryAutoscale(
  cli: CeleryCliSession,
  node: string,
  args: string[],
): Promise<string> {
  const out = await cli.run(["control", "autoscale", ...args, "-d", node, "-t", "5"]);
  return (out.stdout + out.stderr).replaceAll(node, "NODE") + `\nexit ${out.code}`;
}

Deno.test({
  name: "autoscale interop: celery control autoscale prints the same for Celeriac and Python " +
    "workers, with and without autoscale; celery inspect stats parses",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-as-py-${crypto.randomUUID().slice(0, 8)}`;
  const tsNode = `as-ts-${queue}@interop`;
  const tsOff = `as-ts-off-${queue}@interop`;
  const pyNode = `as-py-${queue}@interop`;
  const pyOff = `as-py-off-${queue}@interop`;
  // What Python's CLI talks to is the remote control, not the CLI: in-process workers answer.
  interopApp.configure({ broker: BROKER, backend: REDIS_URL, defaultQueue: queue });
  const inProcess = (hostname: string, options: Partial<WorkerOptions>) =>
    new Worker({ app: interopApp, appModule: INTEROP_APP, queues: [queue], hostname, ...options });
  const ts = inProcess(tsNode, { autoscale: { max: 2, min: 1 } });
  const tsPlain = inProcess(tsOff, { concurrency: 1 });
  await Promise.all([ts.start(), tsPlain.start()]);
  const py = await celeryWorker(
    ["-P", "prefork", "--autoscale", "2,1", "-Q", queue, "-n", pyNode],
    pyEnv(queue),
  );
  const pyPlain = await celeryWorker(["-P", "solo", "-Q", queue, "-n", pyOff], pyEnv(queue));
  // The commands below run Python's `celery` entry point in this one Python process.
  const cli = new CeleryCliSession(pyEnv(queue));
  try {
    const ok = await celeryAutoscale(cli, tsNode, ["3", "1"]);
    assert.match(ok, /NODE: OK\s+autoscale now max=3 min=1/);
    assert.equal(ok, await celeryAutoscale(cli, pyNode, ["3", "1"]));

    const off = await celeryAutoscale(cli, tsOff, ["3", "1"]);
    assert.match(off, /Autoscale not enabled/);
    assert.equal(off, await celeryAutoscale(cli, pyOff, ["3", "1"]));

    const inspect = await cli.run(["inspect", "stats", "-d", tsNode, "-j", "-t", "5"]);
    assert.equal(inspect.code, 0, inspect.stderr);
    const reply = JSON.parse(inspect.stdout)[tsNode];
    assert.deepEqual(reply.autoscaler, { max: 3, min: 1, current: 1, qty: 0 });
  } finally {
    await cli.close();
    await Promise.all([ts.stop(), tsPlain.stop(), py.stop(), pyPlain.stop()]);
    await interopApp.close();
  }
});

Deno.test({ name: "autoscale: clean up keys", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(prefix);
  await deleteResults(taskIds);
});
