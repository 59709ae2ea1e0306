/**
 * Messages sent from a template (a batch's calls, `delay()` calls) are the
 * same bytes on Redis as the ones encoded call by call.
 */

import assert from "node:assert/strict";
import { Celery, currentTask } from "../mod.ts";
import { type Message, PUBLISHER } from "../protocol.ts";
import { ENVELOPE_HEAD } from "../src/protocol/envelope.ts";
import { priorityList } from "../transports.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/** An envelope with its task id and delivery tag replaced: what is the same for every call. */
function shape(raw: string): string {
  const env = JSON.parse(raw);
  return raw.replaceAll(env.headers.id, "<id>").replaceAll(env.properties.delivery_tag, "<tag>");
}

Deno.test({
  name: "send template: delay() and delayMany() write the envelopes sendTask() writes",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("send-template");
  const app = new Celery({
    broker: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`,
    backend: null,
    defaultQueue: "q",
  });
  const redis = await rawRedis();
  try {
    const echo = app.remoteTask<[number, string], unknown>("tests.echo", { priority: 3 });
    const args: [number, string] = [1, 'h\u00e9llo "x"'];
    // The general path: options that are not frozen.
    const plain = await app.sendTask("tests.echo", args, { priority: 3 });
    // delay(): the first call encodes on its own, the second builds the template, the third reuses it.
    const delayed = [
      await echo.delay(...args),
      await echo.delay(...args),
      await echo.delay(...args),
    ];
    const batch = await echo.delayMany([args, args]);
    const raws = (await redis.lrange(prefix + priorityList("q", 3), 0, -1)).reverse();
    assert.equal(raws.length, 6);
    const ids = [plain, ...delayed, ...batch].map((r) => r.id);
    assert.deepEqual(raws.map((r) => JSON.parse(r).headers.id), ids);
    const want = shape(raws[0]);
    for (const raw of raws.slice(1)) assert.equal(shape(raw), want);
  } finally {
    await app.close();
    await redis.quit();
    await deleteKeys(prefix);
  }
});

Deno.test("send template: messages given to a publisher hook carry no prewritten envelope", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const sent: { message: Message; target: unknown }[] = [];
  app[PUBLISHER] = (message, target) => {
    sent.push({ message, target });
    return Promise.resolve();
  };
  const add = app.remoteTask<[number, number], number>("tests.add");
  for (let i = 0; i < 3; i++) await add.delay(i, i);
  await add.delayMany([[1, 1], [2, 2]]);
  assert.equal(sent.length, 5);
  for (const { message } of sent) assert.equal(ENVELOPE_HEAD in message, false);
  // Each call gets its own target object: a hook may keep or change it.
  assert.equal(new Set(sent.map((s) => s.target)).size, 5);
  assert.deepEqual(sent.map((s) => s.message.headers.argsrepr), [
    "(0, 0)",
    "(1, 1)",
    "(2, 2)",
    "(1, 1)",
    "(2, 2)",
  ]);
  await app.close();
});

Deno.test("send template: calls sent from inside a task carry that task as parent and root", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const sent: Message[] = [];
  app[PUBLISHER] = (message) => {
    sent.push(message);
    return Promise.resolve();
  };
  const add = app.remoteTask<[number, number], number>("tests.add");
  for (const parent of [{ id: "p1", rootId: "r1" }, { id: "p2", rootId: "r2" }]) {
    await currentTask.run(parent, async () => {
      for (let i = 0; i < 3; i++) await add.delay(i, i);
      await add.delayMany([[1, 1], [2, 2]]);
    });
  }
  for (let i = 0; i < 3; i++) await add.delay(i, i);
  assert.equal(sent.length, 13);
  const parents = sent.map((m) => [m.headers.parent_id, m.headers.root_id]);
  assert.deepEqual(parents.slice(0, 5), Array(5).fill(["p1", "r1"]));
  assert.deepEqual(parents.slice(5, 10), Array(5).fill(["p2", "r2"]));
  // Outside a task: no parent, each call its own root.
  for (const m of sent.slice(10)) {
    assert.deepEqual([m.headers.parent_id, m.headers.root_id], [null, m.headers.id]);
  }
  await app.close();
});

Deno.test("send template: delay() sends with the task's options as they are at each call", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const sent: { message: Message; target: { routingKey: string } }[] = [];
  app[PUBLISHER] = (message, target) => {
    sent.push({ message, target });
    return Promise.resolve();
  };
  const options = { queue: "a", priority: 1, timeLimit: 10 };
  const add = app.task("tests.add", options, (a: number, b: number) => a + b);
  for (let i = 0; i < 3; i++) await add.delay(i, i);
  options.queue = "b";
  options.priority = 2;
  options.timeLimit = 20;
  for (let i = 0; i < 3; i++) await add.delay(i, i);
  assert.deepEqual(
    sent.map((
      s,
    ) => [s.target.routingKey, s.message.properties.priority, s.message.headers.timelimit]),
    [...Array(3).fill(["a", 1, [10, null]]), ...Array(3).fill(["b", 2, [20, null]])],
  );
  await app.close();
});
