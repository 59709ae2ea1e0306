/**
 * A chord whose header holds a chain ending in a group, with real Python
 * Celery 5.2.6 processes, on Redis: `chord([chain(add(1,1), group([add(1),
 * add(2)])), add(5,5)], echo)` gives the body `[[3, 4], 10]` (Celery's
 * result) whichever client applies it and whichever workers run it. Before,
 * Celeriac counted the chain as one member and its group's members joined no
 * chord: Celeriac workers never ran the body, Python workers ran it with
 * `[3, 4]`, and a Celeriac worker gave a Python-applied chord a flat list.
 */

import assert from "node:assert/strict";
import { Celery, chain, chord, group } from "../mod.ts";
import { pyJsonDumps, pyJsonLoads } from "../protocol.ts";
import { interopWorker, type PyOutcome, SHARED_PROCS, SharedProcs } from "./helpers/interop.ts";
import { celeryWorker, type Proc, runPython } from "./helpers/procs.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const prefix = uniquePrefix("interop-chord-nested");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
/** Task and group ids whose results sit in the shared Redis backend, deleted at the end. */
const ids = new Set<string>();
const T = { timeout: 60_000 };

const pyEnv = (queue: string) => ({
  CELERY_BROKER_URL: REDIS_URL,
  CELERY_RESULT_BACKEND: REDIS_URL,
  INTEROP_KEYPREFIX: prefix,
  INTEROP_QUEUE: queue,
  INTEROP_MARKER_REDIS: REDIS_URL,
});

function tsWorker(queue: string): Promise<Proc> {
  return interopWorker({ broker: BROKER, backend: REDIS_URL }, queue, [], {
    CELERY_DEFAULT_QUEUE: queue,
  });
}

/**
 * Apply the chord with Celeriac's API; `body` is the echo task of the workers' language,
 * `member` the add task the chain's group runs.
 */
async function celeriacChord(queue: string, body: string, member = "tasks.add"): Promise<unknown> {
  const app = new Celery({ broker: BROKER, backend: REDIS_URL, defaultQueue: queue });
  try {
    const add = app.remoteTask<[number, number], number>("tasks.add");
    const groupAdd = app.remoteTask<[number, number], number>(member);
    const echo = app.remoteTask<[unknown], unknown>(body);
    const r = await chord(
      [chain(add.s(1, 1), group([groupAdd.s(1), groupAdd.s(2)])), add.s(5, 5)],
      echo.s(),
    ).applyAsync();
    ids.add(r.id);
    ids.add(r.parent!.id);
    return await r.get(T);
  } finally {
    await app.close();
  }
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `nested chord header: ${name}`, ignore: WITHOUT_CELERY }, fn);

/** The Celeriac worker both Celeriac-worker tests use (its queue its default), stopped by the clean-up. */
const tsQueue = `q-nest-ts-${crypto.randomUUID().slice(0, 8)}`;
const celeriac = new SharedProcs(() => ({ ts: tsWorker(tsQueue) }));
const sharedTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `nested chord header: ${name}`, ignore: WITHOUT_CELERY, ...SHARED_PROCS }, fn);

sharedTest("Celeriac client, Celeriac workers: the body gets [[3, 4], 10]", async () => {
  await celeriac.get();
  assert.deepEqual(await celeriacChord(tsQueue, "tasks.echo"), [[[3, 4], 10]]);
});

test("Celeriac client, Python workers: the body gets [[3, 4], 10]", async () => {
  const queue = `q-nest-tspy-${crypto.randomUUID().slice(0, 8)}`;
  // Two processes: a Python worker applying the chain's group stores the chord size as the
  // group's (2, Celery's group._apply_tasks), so the join may start before the group's last
  // member ran and waits for it (a solo worker would wait forever, with Python's client too).
  // And it stores that size after sending the group's first member: a member done before the
  // write counts against the old size, the count passes the new one and the body never runs
  // (seen in CI at load ~9, Python's client alike). The group's members take 0.3 s
  // (py.slow_add), so the size is written first.
  const worker = await celeryWorker(["-P", "prefork", "-c", "2", "-Q", queue], pyEnv(queue));
  try {
    const out = await celeriacChord(queue, "py.echo", "py.slow_add").catch((e) => {
      throw new Error(`${e}\n${worker.output.slice(-5000)}`);
    });
    assert.deepEqual(out, { args: [[[3, 4], 10]], kwargs: {} });
  } finally {
    await worker.stop();
  }
});

sharedTest("Python client, Celeriac workers: the body gets [[3, 4], 10]", async () => {
  await celeriac.get();
  const queue = tsQueue;
  const s = (task: string, ...args: unknown[]) => ({ s: task, args });
  const spec = {
    chord: [
      { chain: [s("tasks.add", 1, 1), { group: [s("tasks.add", 1), s("tasks.add", 2)] }] },
      s("tasks.add", 5, 5),
    ],
    body: s("tasks.echo"),
  };
  const [out] = pyJsonLoads(
    await runPython("pycanvas.py", [pyJsonDumps([spec])], pyEnv(queue)),
  ) as (PyOutcome & { ids: string[] })[];
  for (const id of out.ids) ids.add(id);
  assert.deepEqual(out.ok, [[[3, 4], 10]], JSON.stringify(out.error));
});

Deno.test(
  { name: "nested chord header: clean up", ignore: WITHOUT_CELERY, ...SHARED_PROCS },
  async () => {
    await celeriac.stop();
    await deleteKeys(prefix);
    const redis = await rawRedis();
    try {
      const keys = [...ids].flatMap((id) => [
        `celery-task-meta-${id}`,
        `celery-taskset-meta-${id}`,
        `celery-taskset-meta-${id}.j`,
        `celery-taskset-meta-${id}.s`,
        `celery-taskset-meta-${id}.t`,
      ]);
      if (keys.length) await redis.del(...keys);
    } finally {
      await redis.quit();
    }
  },
);
