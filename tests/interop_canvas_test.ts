/**
 * Canvas interop with real Python Celery 5.2.6 processes: canvases built
 * with Python's API run on a Celeriac worker (and Python's `.get()` gets the
 * values, or `ChordError`; chord header members and chain steps that replace
 * themselves with `ctx.replace()` included); the same canvases built with Celeriac's API run
 * on a Python worker; a chord whose header is split across a Python and a
 * Celeriac worker fires its body exactly once (50 times over); 1,000-member
 * groups and chords; saved groups restored across languages; the children
 * Python reads after a task with two or more links. On Redis, and
 * on RabbitMQ with the Redis result backend.
 *
 * The tests of each setup share one Celeriac and one Python worker (on a
 * queue each), started on first use and stopped by the clean-up test: a
 * worker start costs a second or two of CPU. The split chord and the rpc
 * result backend keep workers of their own.
 */

import assert from "node:assert/strict";
import {
  type AsyncResult,
  Celery,
  chain,
  chord,
  group,
  type GroupResult,
  TaskError,
} from "../mod.ts";
import { pyJsonDumps, pyJsonLoads } from "../protocol.ts";
import { type PyOutcome, SHARED_PROCS, SharedProcs } from "./helpers/interop.ts";
import { celeriacWorker, celeryWorker, type Proc, runPython } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";

const prefix = uniquePrefix("interop-canvas");
const REDIS_BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
const BACKEND = REDIS_URL;
/** Task and group ids whose results sit in the shared Redis backend, deleted at the end. */
const ids = new Set<string>();

interface Setup {
  label: string;
  /** Broker URL for Celeriac. */
  broker: string;
  /** Environment for Python processes. */
  pyEnv(queue: string): Record<string, string>;
}

const redisSetup: Setup = {
  label: "Redis",
  broker: REDIS_BROKER,
  pyEnv: (queue) => ({
    CELERY_BROKER_URL: REDIS_URL,
    CELERY_RESULT_BACKEND: BACKEND,
    INTEROP_KEYPREFIX: prefix,
    INTEROP_QUEUE: queue,
    INTEROP_MARKER_REDIS: REDIS_URL,
  }),
};

const amqpIgnore = WITHOUT_CELERY || WITHOUT_RABBITMQ;
const vhost = amqpIgnore ? null : await createVhost("interop-canvas");
const AMQP_BROKER = `amqp://guest:guest@127.0.0.1:5672/${vhost?.name}`;
const amqpSetup: Setup = {
  label: "RabbitMQ + Redis backend",
  broker: AMQP_BROKER,
  pyEnv: (queue) => ({
    CELERY_BROKER_URL: AMQP_BROKER,
    CELERY_RESULT_BACKEND: BACKEND,
    INTEROP_QUEUE: queue,
    INTEROP_MARKER_REDIS: REDIS_URL,
  }),
};

/** What pycanvas.py reports of a canvas: `kids` when its spec asked for them. */
type CanvasOutcome = PyOutcome & { ids: string[]; kids?: (number | "task")[] };

/** Build and apply canvases with Python's API (tests/interop/pycanvas.py). */
async function pythonCanvases(
  setup: Setup,
  queue: string,
  specs: unknown[],
): Promise<CanvasOutcome[]> {
  const out = pyJsonLoads(
    await runPython("pycanvas.py", [pyJsonDumps(specs)], setup.pyEnv(queue)),
  ) as CanvasOutcome[];
  for (const o of out) for (const id of o.ids) ids.add(id);
  return out;
}

function note(r: AsyncResult<unknown> | GroupResult<unknown[]>): void {
  ids.add(r.id);
  if ("children" in r && Array.isArray(r.children)) { for (const c of r.children) note(c); }
  if (r.parent) note(r.parent);
}

/** What Python must get back from the canvases it built (see the test below). */
function checkPythonCanvases(out: CanvasOutcome[]): void {
  assert.equal(out[0].ok, 24);
  assert.equal(out[1].ok, 20);
  assert.deepEqual(out[2].ok, [2, 4]);
  assert.equal(out[3].ok, 6);
  assert.equal(out[4].ok, 7);
  assert.deepEqual(out[5].ok, [3, 7]);
  assert.deepEqual(out[6].ok, [3, 7]);
  assert.deepEqual(out[7].ok, [[2, 4], [6]]);
  assert.equal(out[8].error?.type, "ChordError");
  assert.equal(out[8].error?.module, "celery.exceptions");
  assert.match(
    String(out[8].error?.args[0]),
    /^Dependency [0-9a-f-]{36} raised ValueError\('boom'\)$/,
  );
  assert.equal(out[9].ok, 500_500);
  assert.equal((out[10].ok as number[]).length, 1000);
  assert.equal((out[10].ok as number[])[999], 1998);
  assert.deepEqual(out[11].ok, [[[2, 3], 102, 2]], "replaced header members keep their places");
  assert.equal(out[12].ok, 1102, "a replaced chain step hands its result on");
  assert.equal(out[13].ok, 7);
  // The step before a chord lists the chord's header group, as a Python worker stores it (it
  // listed the chord's body).
  assert.deepEqual(out[13].kids, [2]);
}

const s = (task: string, ...args: unknown[]) => ({ s: task, args });

/**
 * A Celeriac worker on the interop tasks whose app's default queue is the
 * test queue: like Python's `task_default_queue`, it is where the worker
 * sends chain steps and chord bodies that name no queue.
 */
function tsWorker(
  broker: string,
  queue: string,
  extra: string[] = [],
  app = "./tests/interop/tasks.ts",
  env: Record<string, string> = {},
): Promise<Proc> {
  return celeriacWorker(
    [
      "--app",
      app,
      "--broker",
      broker,
      "--backend",
      BACKEND,
      "-Q",
      queue,
      "-c",
      "2",
      ...extra,
    ],
    { INTEROP_MARKER_REDIS: REDIS_URL, CELERY_DEFAULT_QUEUE: queue, ...env },
  );
}

/**
 * The workers the tests of one setup share: a Celeriac worker on `tsQueue` (its default queue)
 * and a Python `-P solo` worker on `pyQueue` (its `task_default_queue`).
 */
function sharedWorkers(
  setup: Setup,
  startTs: (tsQueue: string, pyQueue: string) => Promise<Proc>,
) {
  const tsQueue = `q-ts-${crypto.randomUUID().slice(0, 8)}`;
  const pyQueue = `q-py-${crypto.randomUUID().slice(0, 8)}`;
  const procs = new SharedProcs(() => ({
    ts: startTs(tsQueue, pyQueue),
    py: celeryWorker(["-P", "solo", "-Q", pyQueue], setup.pyEnv(pyQueue)),
  }));
  return { tsQueue, pyQueue, procs };
}

/**
 * On Redis the Celeriac worker's app routes Python's tasks (`py.*`) to the Python worker's
 * queue (tests/interop/routed_tasks.ts), for the test of the follow-ups it routes.
 */
const redisWorkers = sharedWorkers(
  redisSetup,
  (tsQueue, pyQueue) =>
    tsWorker(REDIS_BROKER, tsQueue, [], "./tests/interop/routed_tasks.ts", {
      INTEROP_PY_QUEUE: pyQueue,
    }),
);
const amqpWorkers = sharedWorkers(amqpSetup, (tsQueue) => tsWorker(AMQP_BROKER, tsQueue));
for (const setup of [redisSetup, amqpSetup]) {
  const ignore = setup === amqpSetup ? amqpIgnore : WITHOUT_CELERY;
  const workers = setup === amqpSetup ? amqpWorkers : redisWorkers;
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({ name: `canvas interop on ${setup.label}: ${name}`, ignore, ...SHARED_PROCS }, fn);
  const client = (queue: string) =>
    new Celery({ broker: setup.broker, backend: BACKEND, defaultQueue: queue });

  test("Python-built canvases run on a Celeriac worker; Python gets values and ChordError", async () => {
    const { ts: worker } = await workers.procs.get();
    const queue = workers.tsQueue;
    const out = await pythonCanvases(setup, queue, [
      { chain: [s("tasks.add", 1, 2), s("tasks.add", 3), s("tasks.mul", 4)] },
      { chain: [s("tasks.add", 1, 2), { s: "tasks.add", args: [10, 10], immutable: true }] },
      { group: [s("tasks.add", 1, 1), s("tasks.add", 2, 2)] },
      { chord: [s("tasks.add", 1, 1), s("tasks.add", 2, 2)], body: s("tasks.tsum") },
      {
        chain: [
          s("tasks.add", 1, 1),
          { group: [s("tasks.add", 1), s("tasks.add", 2)] },
          s("tasks.tsum"),
        ],
      },
      { map: "tasks.tsum", it: [[1, 2], [3, 4]] },
      { starmap: "tasks.add", it: [[1, 2], [3, 4]] },
      { chunks: "tasks.add", it: [[1, 1], [2, 2], [3, 3]], n: 2 },
      {
        chord: [s("tasks.add", 1, 1), s("tasks.fail", "boom")],
        body: s("tasks.tsum"),
        // Celery's .get() re-raises a failed header member it finds first; the body's own
        // result is the ChordError.
        follow_parents: false,
      },
      {
        chord: Array.from({ length: 1000 }, (_, i) => s("tasks.add", i, 1)),
        body: s("tasks.tsum"),
      },
      { group: Array.from({ length: 1000 }, (_, i) => s("tasks.add", i, i)) },
      {
        chord: [s("tasks.by_group", 1), s("tasks.by_task", 2), s("tasks.add", 1, 1)],
        body: s("tasks.echo"),
      },
      { chain: [s("tasks.add", 1, 1), s("tasks.by_task"), s("tasks.add", 1000)] },
      {
        chain: [
          s("tasks.add", 1, 1),
          { chord: [s("tasks.add", 1), s("tasks.add", 2)], body: s("tasks.tsum") },
        ],
        kids: true,
      },
    ]);
    try {
      checkPythonCanvases(out);
    } catch (err) {
      // A timed-out spec is an error in `out`: say which, with the worker's last words.
      const specs = JSON.stringify(out.map((o) => o.error ?? "ok"));
      throw new Error(
        `${(err as Error).message}\nspecs: ${specs}\nworker output:\n${worker.output.slice(-6000)}`,
        { cause: err },
      );
    }
  });

  test("Celeriac-built canvases run on a Python worker; Celeriac gets typed values and ChordError", async () => {
    await workers.procs.get();
    const queue = workers.pyQueue;
    const app = client(queue);
    try {
      const add = app.remoteTask<[number, number], number>("tasks.add");
      const mul = app.remoteTask<[number, number], number>("py.mul");
      const tsum = app.remoteTask<[number[]], number>("tasks.tsum");
      const fail = app.remoteTask<[string], never>("py.fail");
      const c = await chain(add.s(1, 2), add.s(3), mul.s(4)).applyAsync();
      const g = await group([add.s(1, 1), mul.s(2, 3)]).applyAsync();
      const k = await chord([add.s(1, 1), add.s(2, 2)], tsum.s()).applyAsync();
      const up = await chain(add.s(1, 1), group([add.s(1), add.s(2)]), tsum.s()).applyAsync();
      const m = await tsum.map([[1, 2], [3, 4]]).applyAsync();
      const sm = await add.starmap([[1, 2], [3, 4]]).applyAsync();
      const ch = await add.chunks([[1, 1], [2, 2], [3, 3]], 2).applyAsync();
      const bad = await chord([add.s(1, 1), fail.s("boom")], tsum.s()).applyAsync();
      const big = await chord(Array.from({ length: 1000 }, (_, i) => add.s(i, 1)), tsum.s())
        .applyAsync();
      for (const r of [c, g, k, up, m, sm, ch, bad, big]) note(r);
      const T = { timeout: 60_000 };
      const product: number = await c.get(T);
      assert.equal(product, 24);
      const pair: [number, number] = await g.get(T);
      assert.deepEqual(pair, [2, 6]);
      assert.equal(await k.get(T), 6);
      assert.equal(await up.get(T), 7);
      assert.deepEqual(await m.get(T), [3, 7]);
      assert.deepEqual(await sm.get(T), [3, 7]);
      assert.deepEqual(await ch.get(T), [[2, 4], [6]]);
      const err = await bad.get(T).then(() => null, (e) => e);
      assert.ok(err instanceof TaskError);
      assert.equal(err.excType, "ChordError");
      assert.equal(err.excModule, "celery.exceptions");
      const failedId = (bad.parent as GroupResult).children[1].id;
      assert.deepEqual(err.excMessage, [`Dependency ${failedId} raised ValueError('boom')`]);
      assert.equal(await big.get({ timeout: 120_000 }), 500_500);
      // The chain's first step lists the next one in its children, as Python writes it.
      const first = (c.parent as AsyncResult).parent as AsyncResult;
      assert.deepEqual((await first.children()).map((r) => r.id), [(c.parent as AsyncResult).id]);
      // A group saved here is restored by Python, and the reverse.
      await g.save();
      const [restored] = await pythonCanvases(setup, queue, [{ restore: g.id }]);
      assert.deepEqual(restored.ok, [2, 6]);
    } finally {
      await app.close();
    }
  });

  test("a chain whose chord fails on a Python worker: get() throws the chord's ChordError", async () => {
    // Python stores the ChordError under the chord's body only: the steps after it stay PENDING.
    // Celeriac's get() of the chain waited for its last step until the timeout; it follows the
    // parent links now, as Python's AsyncResult.get() does.
    await workers.procs.get();
    const app = client(workers.pyQueue);
    try {
      const add = app.remoteTask<[number, number], number>("tasks.add");
      const tsum = app.remoteTask<[number[]], number>("tasks.tsum");
      const fail = app.remoteTask<[string], never>("py.fail");
      const r = await chain(chord([add.s(1, 1), fail.s("boom")], tsum.s()), add.s(10), add.s(1))
        .applyAsync();
      note(r);
      const err = await r.get({ timeout: 30_000 }).then(() => null, (e) => e);
      assert.ok(err instanceof TaskError, String(err));
      assert.equal(err.excType, "ChordError");
      const body = (r.parent as AsyncResult).parent as AsyncResult;
      assert.equal(err.taskId, body.id);
      assert.equal(await r.state(), "PENDING");
      // A chain step that fails on its own: Python marks the steps after it, and the earliest
      // failure is thrown.
      const plain = await chain(add.s(1, 1), fail.s(), add.s(1)).applyAsync();
      note(plain);
      const perr = await plain.get({ timeout: 60_000 }).then(() => null, (e) => e);
      assert.ok(perr instanceof TaskError, String(perr));
      assert.equal(perr.excType, "ValueError");
      assert.equal(perr.taskId, plain.parent!.id);
      const own = await plain.get({ timeout: 30_000, followParents: false }).catch((e) => e);
      assert.equal(own.excType, "ValueError");
      assert.equal(own.taskId, plain.id);
    } finally {
      await app.close();
    }
  });
}

Deno.test({
  name:
    "canvas interop on Redis: a Celeriac worker routes chain steps and chord bodies with its app's taskRoutes",
  ignore: WITHOUT_CELERY,
  ...SHARED_PROCS,
}, async () => {
  // The worker sent every follow-up that named no queue to its default queue, whatever its app's
  // taskRoutes said (Celery's worker routes them with task_routes): a Python step after a
  // Celeriac one landed on the Celeriac queue and was parked as NotRegistered.
  const { ts } = await redisWorkers.procs.get();
  const { tsQueue, pyQueue } = redisWorkers;
  const before = ts.output.length;
  const app = new Celery({
    broker: REDIS_BROKER,
    backend: BACKEND,
    defaultQueue: tsQueue,
    taskRoutes: { "py.*": pyQueue },
  });
  try {
    const add = app.remoteTask<[number, number], number>("tasks.add");
    const mul = app.remoteTask<[number, number], number>("py.mul");
    const echo = app.remoteTask<unknown[], { args: unknown[] }>("py.echo");
    const c = await chain(add.s(1, 2), mul.s(10), add.s(5)).applyAsync();
    const k = await chord([add.s(1, 1), add.s(2, 2)], echo.s()).applyAsync();
    note(c);
    note(k);
    assert.equal(await c.get({ timeout: 30_000 }), 35);
    assert.deepEqual((await k.get({ timeout: 30_000 })).args, [[2, 4]]);
    assert.doesNotMatch(ts.output.slice(before), /Parked/);
  } finally {
    await app.close();
  }
});

Deno.test({
  name:
    "canvas interop on Redis: a chord split across a Python and a Celeriac worker fires its body exactly once, 50 times",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-csplit-${crypto.randomUUID().slice(0, 8)}`;
  const workers = new SharedProcs(() => ({
    py: celeryWorker(["-P", "prefork", "-c", "2", "-Q", queue], redisSetup.pyEnv(queue)),
    ts: tsWorker(REDIS_BROKER, queue, ["--prefetch", "2"]),
  }));
  await workers.get();
  const app = new Celery({ broker: REDIS_BROKER, backend: BACKEND, defaultQueue: queue });
  const redis = await rawRedis();
  const marker = `${prefix}split`;
  try {
    const who = app.remoteTask<[number], string>("tasks.who");
    const collect = app.remoteTask<[string[], string], number>("tasks.collect");
    const chords = await Promise.all(
      Array.from(
        { length: 50 },
        (_, c) =>
          chord(Array.from({ length: 6 }, (_, i) => who.s(i)), collect.s(`${marker}:${c}`))
            .applyAsync(),
      ),
    );
    for (const r of chords) note(r);
    const sizes = await Promise.all(chords.map((r) => r.get({ timeout: 90_000 })));
    assert.deepEqual(sizes, Array(50).fill(6));
    const runners = { py: 0, ts: 0 };
    for (let c = 0; c < 50; c++) {
      const calls = await redis.lrange(`${marker}:${c}`, 0, -1);
      assert.equal(calls.length, 1, `chord ${c} body ran ${calls.length} times`);
      const { items } = JSON.parse(calls[0]) as { items: string[] };
      assert.deepEqual(items.map((x) => x.split(":")[1]), ["0", "1", "2", "3", "4", "5"]);
      for (const x of items) runners[x.startsWith("py:") ? "py" : "ts"]++;
    }
    assert.ok(
      runners.py > 0 && runners.ts > 0,
      `both workers ran header members: ${pyJsonDumps(runners)}`,
    );
    // Python's chord of the same kind, joined on the same two workers.
    const out = await pythonCanvases(
      redisSetup,
      queue,
      Array.from({ length: 10 }, (_, c) => ({
        chord: Array.from({ length: 6 }, (_, i) => s("tasks.who", i)),
        body: s("tasks.collect", `${marker}:py${c}`),
      })),
    );
    assert.deepEqual(out.map((o) => o.ok), Array(10).fill(6));
    for (let c = 0; c < 10; c++) assert.equal(await redis.llen(`${marker}:py${c}`), 1);
  } finally {
    await app.close();
    await redis.quit();
    await workers.stop();
  }
});

Deno.test({
  name: "canvas interop on RabbitMQ + rpc: a Python chain whose first step fails on Celeriac",
  ignore: amqpIgnore,
}, async () => {
  // Celery stores the failure under each later step too, sending it (rpc) to the reply_to in that
  // step's options. Celeriac sent those with no reply_to, so nothing: .get() of the chain (its last
  // step) waited out its whole timeout.
  const queue = `q-rpcchain-${crypto.randomUUID().slice(0, 8)}`;
  const worker = await celeriacWorker(
    [
      "--app",
      "./tests/interop/tasks.ts",
      "--broker",
      AMQP_BROKER,
      "--backend",
      "rpc://",
      "-Q",
      queue,
    ],
    { CELERY_DEFAULT_QUEUE: queue, INTEROP_MARKER_REDIS: REDIS_URL },
  );
  try {
    const rpcSetup: Setup = {
      ...amqpSetup,
      pyEnv: (q) => ({
        ...amqpSetup.pyEnv(q),
        CELERY_RESULT_BACKEND: "rpc://",
        INTEROP_TIMEOUT: "10",
      }),
    };
    const out = await pythonCanvases(rpcSetup, queue, [
      { chain: [s("tasks.fail", "early"), s("tasks.add", 10)] },
    ]);
    assert.equal(out[0].error?.type, "ValueError", JSON.stringify(out[0]));
    assert.deepEqual(out[0].error?.args, ["early"]);
  } finally {
    await worker.stop();
  }
});

Deno.test({
  name:
    "canvas interop on Redis: Python reads the same children after a Python and a Celeriac worker ran a task with two or more links",
  ignore: WITHOUT_CELERY,
  ...SHARED_PROCS,
}, async () => {
  // With two or more callbacks Celery 5.2's worker applies each group, then all the others as one
  // new group, recorded as one GroupResult child; Celeriac recorded each callback on its own.
  // One Python process applies every case, then reads each.
  const read = async (runs: { queue: string; links: string[] }[]) => {
    const out = pyJsonLoads(
      await runPython("pychildren.py", [pyJsonDumps(runs)], redisSetup.pyEnv("unused")),
    ) as { children: unknown[]; ids: string[] }[];
    for (const o of out) for (const id of o.ids) ids.add(id);
    return out.map((o) => o.children);
  };
  const cases = [["task", "group", "chain"], ["task", "task"], ["group", "group"], ["chain"]];
  await redisWorkers.procs.get();
  const { tsQueue, pyQueue } = redisWorkers;
  const kids = await read([
    ...cases.map((links) => ({ queue: pyQueue, links })),
    ...cases.map((links) => ({ queue: tsQueue, links })),
  ]);
  const [fromPy, fromTs] = [kids.slice(0, cases.length), kids.slice(cases.length)];
  cases.forEach((links, i) => assert.deepEqual(fromTs[i], fromPy[i], links.join(", ")));
  const task = (value: number) => ({ kind: "task", value });
  // Each group first, then the task and the chain (by its last step) in one new group.
  assert.deepEqual(fromTs[0], [
    { kind: "group", members: [task(4), task(5)] },
    { kind: "group", members: [task(13), task(6)] },
  ]);
});

Deno.test(
  { name: "canvas interop: clean up", ignore: WITHOUT_CELERY, ...SHARED_PROCS },
  async () => {
    await Promise.all([redisWorkers.procs.stop(), amqpWorkers.procs.stop()]);
    await deleteKeys(prefix);
    const redis = await rawRedis();
    try {
      const all = [...ids];
      for (let i = 0; i < all.length; i += 500) {
        const keys = all.slice(i, i + 500).flatMap((id) => [
          `celery-task-meta-${id}`,
          `celery-taskset-meta-${id}`,
          `celery-taskset-meta-${id}.j`,
          `celery-taskset-meta-${id}.s`,
          `celery-taskset-meta-${id}.t`,
        ]);
        await redis.del(...keys);
      }
    } finally {
      await redis.quit();
    }
    await vhost?.remove();
  },
);
