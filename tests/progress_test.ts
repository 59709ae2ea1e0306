/**
 * Progress and custom states: `ctx.updateState({ state: "PROGRESS", meta })`
 * is stored as Celery stores `update_state` (a Python client's
 * `AsyncResult.info` reads it), and `AsyncResult.onProgress` /
 * `AsyncResult.updates()` receive states as they are stored — from
 * Celeriac and from Python workers.
 */

import assert from "node:assert/strict";
import { Celery, type TaskUpdate } from "../mod.ts";
import { pyJsonLoads } from "../src/protocol/json.ts";
import { stateUpdater } from "../src/worker/task_state.ts";
import { Worker } from "../src/worker/worker.ts";
import { app as progressApp } from "./apps/progress_app.ts";
import { celeryWorker, runPython } from "./helpers/procs.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

const APP_MODULE = new URL("./apps/progress_app.ts", import.meta.url).href;
const prefix = uniquePrefix("progress");
const REDIS = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

async function withProgressWorker(
  url: string,
  fn: (client: Celery, queue: string) => Promise<void>,
  backend = url,
): Promise<void> {
  const queue = `progress-${crypto.randomUUID().slice(0, 8)}`;
  progressApp.configure({ broker: url, backend });
  const worker = new Worker({
    app: progressApp,
    appModule: APP_MODULE,
    queues: [queue],
    concurrency: 1,
  });
  const client = new Celery({ broker: url, backend, defaultQueue: queue });
  await worker.start();
  try {
    await fn(client, queue);
  } finally {
    await worker.stop();
    await client.close();
    await progressApp.close();
  }
}

function progressOf(updates: TaskUpdate[]): number[] {
  return updates.filter((u) => u.state === "PROGRESS").map((u) =>
    (u.info as { done: number }).done
  );
}

function checkSteps(updates: TaskUpdate[], n: number): void {
  const done = progressOf(updates);
  assert.ok(done.length >= 1, `no PROGRESS seen: ${JSON.stringify(updates.map((u) => u.state))}`);
  assert.deepEqual(done, [...done].sort((a, b) => a - b), "in the order they were stored");
  assert.equal(done.at(-1), n, "the last step is seen");
  assert.deepEqual(new Set(done).size, done.length, "each state once");
  const progress = updates.find((u) => u.state === "PROGRESS")!;
  assert.deepEqual(progress.meta.result, progress.info);
  assert.equal(progress.meta.date_done, null, "not ready: no date_done, as Celery");
}

Deno.test("progress: updateState called as Celery's update_state(state) says how to write it", async () => {
  const update = stateUpdater(
    { seq: 1, id: "t1", info: { group: null, parentId: null } },
    undefined,
  );
  const call = update as unknown as (state: string) => Promise<void>;
  await assert.rejects(
    call("PROGRESS"),
    /updateState takes an object, .*ctx\.updateState\(\{ state: "PROGRESS", meta: \{ \.\.\. \} \}\)/,
  );
  await assert.rejects(update({ state: "" }), /needs a state name such as "PROGRESS", got ""/);
});

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("progress");

for (
  const [name, ignore] of [
    ["redis", WITHOUT_REDIS],
    ["kv", false],
    ["rabbitmq with rpc:// results", WITHOUT_RABBITMQ],
  ] as const
) {
  Deno.test(
    { name: `progress on ${name}: onProgress and updates() receive each PROGRESS`, ignore },
    async () => {
      const dir = name === "kv" ? await Deno.makeTempDir({ prefix: "celeriac-progress-" }) : null;
      const [broker, backend] = name === "redis"
        ? [REDIS, REDIS]
        : dir
        ? [`kv://${dir}/db.sqlite`, `kv://${dir}/db.sqlite`]
        : [vhost!.url(), "rpc://"];
      try {
        await withProgressWorker(broker, async (client) => {
          const seen: TaskUpdate[] = [];
          const r1 = await client.sendTask<number>("p.steps", [4, 150]);
          assert.equal(await r1.onProgress((u) => seen.push(u), { timeout: 20_000 }), 4);
          checkSteps(seen, 4);

          const r2 = await client.sendTask<number>("p.steps", [3, 150]);
          const all: TaskUpdate[] = [];
          for await (const u of r2.updates({ timeout: 20_000 })) all.push(u);
          checkSteps(all, 3);
          assert.equal(all.at(-1)?.state, "SUCCESS");
          assert.equal(all.at(-1)?.info, 3);
          assert.equal(await r2.state(), "SUCCESS");

          const r3 = await client.sendTask<string>("p.refused", ["ready"]);
          assert.match(
            await r3.get({ timeout: 10_000 }),
            /^TypeError: updateState cannot store SUCCESS/,
          );
          const r4 = await client.sendTask<string>("p.refused", ["function"]);
          assert.match(await r4.get({ timeout: 10_000 }), /^EncodeError: /);
        }, backend);
      } finally {
        if (dir) await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

Deno.test({
  name: "progress: a listener that throws ends the wait with its error",
  ignore: WITHOUT_REDIS,
}, async () => {
  await withProgressWorker(REDIS, async (client) => {
    const r = await client.sendTask<number>("p.steps", [3, 100]);
    await assert.rejects(
      r.onProgress(() => {
        throw new RangeError("listener broke");
      }, { timeout: 20_000 }),
      /listener broke/,
    );
    assert.equal(await r.get({ timeout: 20_000 }), 3, "the task itself is unaffected");
  });
});

Deno.test({
  name:
    "progress: a Python client reads a Celeriac task's PROGRESS meta (what AsyncResult.state and .info read)",
  ignore: WITHOUT_CELERY,
}, async () => {
  // Celery 5.2's Redis result backend has no key prefix: results go to unprefixed keys.
  await withProgressWorker(REDIS, async (_client, queue) => {
    const out = pyJsonLoads(
      await runPython("pyprogress.py", ["p.steps", "[3, 300]"], {
        CELERY_BROKER_URL: REDIS_URL,
        CELERY_RESULT_BACKEND: REDIS_URL,
        INTEROP_KEYPREFIX: prefix,
        INTEROP_QUEUE: queue,
      }),
    ) as { seen: [string, unknown][]; result: number; id: string };
    assert.equal(out.result, 3);
    const progress = out.seen.filter(([state]) => state === "PROGRESS").map(([, info]) => info);
    assert.ok(progress.length >= 2, JSON.stringify(out.seen));
    assert.deepEqual(progress.at(-1), { done: 3, total: 3 });
    await deleteResults([out.id]);
  }, REDIS_URL);
});

Deno.test({
  name: "progress: onProgress follows a Python task's update_state",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `progress-py-${crypto.randomUUID().slice(0, 8)}`;
  const py = await celeryWorker(["-P", "solo", "-Q", queue], {
    CELERY_BROKER_URL: REDIS_URL,
    CELERY_RESULT_BACKEND: REDIS_URL,
    INTEROP_KEYPREFIX: prefix,
    INTEROP_QUEUE: queue,
  });
  const client = new Celery({ broker: REDIS, backend: REDIS_URL, defaultQueue: queue });
  try {
    const seen: TaskUpdate[] = [];
    const r = await client.sendTask<number>("py.progress", [3, 0.2]);
    assert.equal(await r.onProgress((u) => seen.push(u), { timeout: 20_000 }), 3);
    checkSteps(seen, 3);
    assert.deepEqual(seen.find((u) => u.state === "PROGRESS")?.info, {
      done: progressOf(seen)[0],
      total: 3,
    });
    await deleteResults([r.id]);
  } finally {
    await py.stop();
    await client.close();
  }
});

Deno.test({ name: "progress: clean up", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(prefix);
  await vhost?.remove();
});

Deno.test("progress: examples/progress.ts runs with the permissions its header names", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read=.", "examples/progress.ts"],
    cwd: new URL("../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  // States that change faster than a client reads them may be skipped (README "Progress"): under
  // load a PROGRESS line can be missing, but the ones shown are in order and the outcomes are there.
  const progress = [...text.matchAll(/^PROGRESS (\d)\/5$/gm)].map((m) => Number(m[1]));
  assert.deepEqual(progress, [...progress].sort(), text);
  assert.ok(progress.every((n) => n >= 1 && n <= 5), text);
  assert.match(text, /\nimported 5 rows\n/);
  assert.match(text, /update: SUCCESS 3\n$/);
});
