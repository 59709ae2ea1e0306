/**
 * The errbacks of a chord body that its header fails, on a Celeriac worker,
 * on Redis and on the KV store: a failed member, a revoked member, and (on
 * Redis) join keys another tool spoiled. As Celery's
 * `chord_error_from_stack`, the old-style errback of the worker's app
 * (tests/apps/errback_app.ts `eb.old`) is called in-process with the
 * body's request, the `ChordError` and no traceback; the one-argument one
 * (`eb.new`) and an old-style one the worker does not define (a Python
 * `py.errback_old`) are sent as tasks with the body's id.
 * tests/interop_errbacks_test.ts compares it with a Python worker.
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
import { GROUP_META_PREFIX } from "../src/backend/redis_chord.ts";
import { add, app as ebApp, fail, tsum } from "./apps/errback_app.ts";
import { Worker } from "../src/worker/worker.ts";
import { deleteKeys, rawRedis, uniquePrefix, waitForList } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { redisAndKv, withAppWorker } from "./helpers/worker.ts";

const APP_MODULE = new URL("./apps/errback_app.ts", import.meta.url).href;
const { transports, redisPrefix, cleanup } = await redisAndKv("chord-errbacks");
const markers = uniquePrefix("chord-errbacks-marker");
const T = { timeout: 15_000 };
const redis = await rawRedis();

/**
 * Apply a chord of `header` onto `eb.tsum` with the three errbacks, let `before` spoil it, wait
 * for its ChordError and check each errback: returns the ChordError's message.
 */
async function checkErrbacks(
  client: Celery,
  header: () => Parameters<typeof chord>[0],
  before: (c: AsyncResult<number>) => Promise<void>,
): Promise<string> {
  const marker = `${markers}${crypto.randomUUID()}`;
  const unknownId = crypto.randomUUID();
  const body = tsum.s()
    .onError(client.signature("eb.old", [marker]))
    .onError(client.signature("eb.new", [], { marker_key: marker }))
    .onError(client.signature("py.errback_old", [marker], {}, { taskId: unknownId }));
  const c = await chord(header(), body).applyAsync();
  await before(c);
  const err = await c.get(T).then(() => null, (e) => e);
  assert.ok(err instanceof TaskError, String(err));
  assert.equal(err.excType, "ChordError");
  const message = String(err.excMessage[0]);
  const got = (await waitForList(marker, 2, 15_000)).map((r) => JSON.parse(r));
  got.sort((a, b) => String(a.style).localeCompare(String(b.style)));
  const [fresh, old] = got;
  // Sent as one new group with the body as its parent and root, as Celery's
  // chord_error_from_stack does (group(errbacks).apply_async).
  assert.match(String(fresh.group), /^[0-9a-f-]{36}$/);
  delete fresh.group;
  assert.deepEqual(fresh, { by: "ts", style: "new", failed: c.id, parent: c.id, root: c.id });
  delete old.stored;
  assert.deepEqual(old, {
    by: "ts",
    style: "old",
    failed: c.id,
    name: "eb.tsum",
    args: [],
    exc: `ChordError: ${message}`,
    traceback: false,
    ids: [null, null, null],
  });
  // Not defined here: sent as a task (to this worker's queue, which does not know it either).
  const unknown = await client.asyncResult(unknownId).get(T).then(() => null, (e) => e);
  assert.ok(unknown instanceof TaskError, String(unknown));
  assert.equal(unknown.excType, "NotRegistered");
  assert.equal(await redis.llen(marker), 2, "each errback once");
  return message;
}

for (const t of transports) {
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({ name: `chord errbacks on ${t.name}: ${name}`, ignore: WITHOUT_REDIS }, fn);
  const run = (fn: (client: Celery) => Promise<void>) =>
    withAppWorker(
      ebApp,
      APP_MODULE,
      { broker: t.broker, backend: t.backend },
      {},
      fn,
      `ceb-${crypto.randomUUID().slice(0, 8)}`,
    );

  test("a failed header member: eb.old called in-process with the body's request, the ChordError and no traceback; the others sent", async () => {
    await run(async (client) => {
      let failedId = "";
      const message = await checkErrbacks(
        client,
        () => [add.s(1, 1), fail.s("h")],
        (c) => {
          failedId = (c.parent as GroupResult).children[1].id;
          return Promise.resolve();
        },
      );
      assert.equal(message, `Dependency ${failedId} raised ValueError('h')`);
    });
  });

  test("a group body: each member holds the ChordError too, so the GroupResult's get() throws it", async () => {
    await run(async () => {
      // A group followed by a group is a chord whose body is the second group.
      const c = await chain(group([add.s(1, 1), fail.s("gb")]), group([tsum.s(), tsum.s()]))
        .applyAsync();
      const failedId = (c.parent as unknown as GroupResult).children[1].id;
      const want = `Dependency ${failedId} raised ValueError('gb')`;
      for (const r of [c, ...c.children]) {
        const err = await r.get(T).then(() => null, (e) => e);
        assert.ok(err instanceof TaskError, String(err));
        assert.deepEqual([err.excType, err.excMessage[0]], ["ChordError", want]);
      }
    });
  });

  test("a revoked header member: the same", async () => {
    await run(async (client) => {
      let revokedId = "";
      const message = await checkErrbacks(
        client,
        () => [add.s(1, 1).set({ countdown: 1 }), add.s(2, 2)],
        async (c) => {
          const member = (c.parent as GroupResult).children[0];
          revokedId = member.id;
          await member.revoke();
        },
      );
      assert.equal(message, `Dependency ${revokedId} raised TaskRevokedError('revoked')`);
    });
  });
}

Deno.test({
  name: "chord errbacks on redis: spoiled join keys (a Join error): the same",
  ignore: WITHOUT_REDIS,
}, async () => {
  const t = transports.find((x) => x.name === "redis")!;
  const queue = `ceb-${crypto.randomUUID().slice(0, 8)}`;
  ebApp.configure({ broker: t.broker, backend: t.backend, defaultQueue: queue });
  const client = new Celery({ broker: t.broker, backend: t.backend, defaultQueue: queue });
  const worker = new Worker({ app: ebApp, appModule: APP_MODULE, queues: [queue], concurrency: 1 });
  try {
    // The join keys are spoiled before the worker takes the members.
    const message = await checkErrbacks(
      client,
      () => [add.s(1, 1), add.s(2, 2)],
      async (c) => {
        await redis.set(`${redisPrefix}${GROUP_META_PREFIX}${c.parent!.id}.s`, "lots");
        await worker.start();
      },
    );
    assert.match(message, /^Join error: Chord key .*\.s holds "lots", not a count/);
  } finally {
    await worker.stop();
    await client.close();
    await ebApp.close();
  }
});

Deno.test({ name: "chord errbacks: clean up", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(markers);
  await redis.quit();
  await cleanup();
});
