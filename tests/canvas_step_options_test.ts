/**
 * The options of canvas steps. A step whose signature asks for msgpack or
 * compression is encoded with them even when the worker sending it has not
 * loaded those codecs yet (it loads them on demand). A task's own options
 * (`priority`, `timeLimit`, `softTimeLimit`, `serializer`, `queue`) are the
 * defaults of every send of its signatures, as Celery's `Task.apply_async`
 * applies a task's attributes: a signature made by name (Python's chains
 * carry `options: {}`), group members, and a chain's next step sent by a
 * worker that defines the task — on Redis (the message lands in its
 * priority list) and on RabbitMQ (a priority queue, `x-max-priority`, hands
 * it out first).
 */

import assert from "node:assert/strict";
import { Celery, chain, chord, group } from "../mod.ts";
import { decodeTaskBody, type Message, PUBLISHER, type PublishTarget } from "../protocol.ts";
import type { Broker, Delivery } from "../src/broker/port.ts";
import { openBroker } from "../src/client/transports.ts";
import { loadedCompression, loadedMsgpack } from "../src/protocol/codecs.ts";
import { Worker } from "../src/worker/worker.ts";
import { app as annotatedApp } from "./apps/annotated_app.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

/**
 * A worker of tests/apps/annotated_app.ts and a client on Redis, under a key
 * prefix and a queue of their own; stopped, closed and the keys deleted after `fn`.
 */
async function withAnnotatedWorker(label: string, fn: (client: Celery) => Promise<void>) {
  const prefix = uniquePrefix(`canvas-step-${label}`);
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `${label}-${crypto.randomUUID().slice(0, 8)}`;
  annotatedApp.configure({ broker: url, backend: url, defaultQueue: queue });
  const worker = new Worker({
    app: annotatedApp,
    appModule: new URL("./apps/annotated_app.ts", import.meta.url).href,
    queues: [queue],
    concurrency: 1,
  });
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  await worker.start();
  try {
    await fn(client);
  } finally {
    await worker.stop();
    await client.close();
    await annotatedApp.close();
    await deleteKeys(prefix);
  }
}

// First in this file: nothing in this process has loaded msgpack or compression yet.
Deno.test({
  name:
    "canvas step options: a worker sends msgpack and compressed steps before loading those codecs",
  ignore: WITHOUT_REDIS,
}, async () => {
  assert.throws(() => loadedMsgpack(), /msgpack support is not loaded/);
  assert.throws(() => loadedCompression(), /Compression support is not loaded/);
  await withAnnotatedWorker("codecs", async (client) => {
    const packed = await chain(
      client.signature("r.add", [1, 2]),
      client.signature("r.add", [3]).set({ serializer: "msgpack" }),
    ).applyAsync();
    assert.equal(await packed.get({ timeout: 10_000 }), 6);
    const zipped = await chain(
      client.signature("r.add", [1, 2]),
      client.signature("r.mul", [3]).set({ compression: "zlib" }),
    ).applyAsync();
    assert.equal(await zipped.get({ timeout: 10_000 }), 9);
  });
});

Deno.test("canvas step options: signatures by name and canvas members take their task's options under their own", async () => {
  const app = new Celery({
    broker: "kv://:memory:",
    backend: null,
    taskRoutes: { "t.*": { queue: "routed", priority: 1 } },
  });
  const sent: { message: Message; target: PublishTarget }[] = [];
  app[PUBLISHER] = (message, target) => {
    sent.push({ message, target });
    return Promise.resolve();
  };
  app.task("t.urgent", { priority: 7, timeLimit: 30, softTimeLimit: 20 }, (a: number) => a);
  app.task("t.plain", (a: number) => a);
  await app.signature("t.urgent", [1]).applyAsync();
  await group([app.signature("t.urgent", [2]), app.signature("t.plain", [3])]).applyAsync();
  await app.signature("t.urgent", [4]).set({ priority: 2, timeLimit: 5 }).applyAsync();
  const seen = sent.map(({ message, target }) => [
    message.headers.task,
    target.routingKey,
    message.properties.priority,
    message.headers.timelimit,
  ]);
  assert.deepEqual(seen, [
    ["t.urgent", "routed", 7, [30, 20]],
    ["t.urgent", "routed", 7, [30, 20]],
    ["t.plain", "routed", 1, [null, null]],
    ["t.urgent", "routed", 2, [5, 20]],
  ]);
  await app.close();
});

Deno.test("canvas step options: .s() of a task defined here carries no options, as Celery's; its task's apply when it is sent", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const sent: Message[] = [];
  app[PUBLISHER] = (message) => {
    sent.push(message);
    return Promise.resolve();
  };
  const urgent = app.task(
    "t.urgent",
    { queue: "math", priority: 7, timeLimit: 30 },
    (a: number) => a,
  );
  const py = app.remoteTask("py.mul", { queue: "python", priority: 3 });
  assert.deepEqual(urgent.s(1).toDict().options, {}, "Celery: add.s(1, 2).options == {}");
  assert.deepEqual(urgent.si(1).toDict().options, {});
  assert.deepEqual(
    py.s(2).toDict().options,
    { queue: "python", priority: 3 },
    "a task served elsewhere has no definition here to take them from at send time",
  );
  await chain(urgent.s(1), urgent.s(), py.s(2)).applyAsync();
  assert.equal(sent.length, 1);
  const [first] = sent;
  assert.equal(first.properties.priority, 7, "the published step takes its task's options");
  assert.deepEqual(first.headers.timelimit, [30, null]);
  const [last, next] = decodeTaskBody(first, String(first.headers.id)).embed.chain!;
  assert.deepEqual(
    Object.keys(next.options).sort(),
    ["reply_to", "task_id"],
    "as a Python client embeds it: the worker sending it applies the task's options",
  );
  assert.equal(last.options.queue, "python");
  await app.close();
});

Deno.test("canvas step options: a chain step, a group member and a direct call take every option their route gives", async () => {
  const app = new Celery({
    broker: "kv://:memory:",
    backend: null,
    taskRoutes: {
      "t.*": {
        queue: "routed",
        priority: 4,
        serializer: "msgpack",
        compression: "zlib",
        headers: { tenant: "acme" },
        timeLimit: 9,
        shadow: "routed-name",
      },
    },
  });
  const sent: { message: Message; target: PublishTarget }[] = [];
  app[PUBLISHER] = (message, target) => {
    sent.push({ message, target });
    return Promise.resolve();
  };
  const add = app.task("t.add", (a: number, b: number) => a + b);
  await add.delay(1, 1);
  await chain(add.s(1, 2), add.s(3)).applyAsync();
  await group([add.s(4, 5)]).applyAsync();
  await add.s(6, 7).set({ headers: { tenant: "own" }, serializer: "json" }).applyAsync();
  const seen = sent.map(({ message: m, target }) => [
    target.routingKey,
    m.properties.priority,
    m.contentType,
    m.headers.compression,
    m.headers.tenant,
    m.headers.timelimit,
    m.headers.shadow,
  ]);
  const routed = [
    "routed",
    4,
    "application/x-msgpack",
    "application/x-gzip",
    "acme",
    [9, null],
    "routed-name",
  ];
  assert.deepEqual(seen, [
    routed,
    routed,
    routed,
    ["routed", 4, "application/json", "application/x-gzip", "own", [9, null], "routed-name"],
  ]);
  await app.close();
});

Deno.test("canvas step options: group.skew() spreads the members' countdowns as Celery's", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const sent: Message[] = [];
  app[PUBLISHER] = (message) => {
    sent.push(message);
    return Promise.resolve();
  };
  const add = app.task("t.add", (a: number, b: number) => a + b);
  const countdowns = (g: { toDict(): { kwargs: Record<string, unknown> } }) =>
    (g.toDict().kwargs.tasks as { options: { countdown?: number } }[]).map((t) =>
      t.options.countdown
    );
  const four = () => group([add.s(1, 1), add.s(2, 2), add.s(3, 3), add.s(4, 4)]);
  assert.deepEqual(countdowns(four().skew()), [1, 2, 3, 4], "Celery's defaults: 1 s, step 1 s");
  assert.deepEqual(countdowns(four().skew(0, 1, 0.5)), [0, 0.5, 1, 1], "the rest keep the last");
  const chunked = add.chunks([[1, 1], [2, 2], [3, 3]], 1).skew(2);
  assert.deepEqual(countdowns(chunked), [2, 3, 4]);
  assert.equal(chunked.toDict().task, "celery.group");
  assert.throws(() => chain(add.s(1, 1), four()).skew(), /skew\(\) spreads a group's members/);
  await four().skew(10).applyAsync();
  const etas = sent.map((m) => Date.parse(String(m.headers.eta)));
  assert.deepEqual(etas.map((t) => Math.round((t - etas[0]) / 1000)), [0, 1, 2, 3]);
  assert.ok(etas[0] - Date.now() > 8_000, "the first waits its 10 s");
  await app.close();
});

/** Take the first message of `queue` once `n` are there (the worker publishes it in its own time). */
async function firstOf(
  broker: Broker,
  client: Celery,
  queue: string,
  n: number,
): Promise<Delivery> {
  const until = Date.now() + 15_000;
  while (await client.queueDepth(queue) < n) {
    assert.ok(Date.now() < until, `${queue} never held ${n} messages`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const [d] = await broker.take([queue], { max: 1, signal: AbortSignal.timeout(5_000) });
  assert.ok(d, `a message in ${queue}`);
  return d;
}

/**
 * A chain built as Python builds it (signatures by name, `options: {}`): the
 * worker that runs its first step defines `r.urgent` (priority 7, time
 * limit 30, msgpack) and sends it to a queue already holding two calls of
 * priority `behind`, less urgent than 7 on that broker (Redis and kombu
 * take priority 0 first, RabbitMQ 255).
 */
async function chainStepTakesTaskOptions(
  url: string,
  backend: string,
  behind: number,
): Promise<void> {
  const work = `work-${crypto.randomUUID().slice(0, 8)}`;
  const park = `park-${crypto.randomUUID().slice(0, 8)}`;
  const routes = { "r.urgent": park };
  annotatedApp.configure({ broker: url, backend, taskRoutes: routes });
  const worker = new Worker({
    app: annotatedApp,
    appModule: new URL("./apps/annotated_app.ts", import.meta.url).href,
    queues: [work],
    concurrency: 1,
  });
  const client = new Celery({ broker: url, backend, taskRoutes: routes });
  const reader = await openBroker(url);
  await worker.start();
  try {
    await client.sendTask("r.mul", [1, 1], { queue: park, priority: behind });
    await client.sendTask("r.mul", [2, 2], { queue: park, priority: behind });
    const flow = chain(
      client.signature("r.add", [2, 3]).set({ queue: work }),
      client.signature("r.urgent", [4]),
    );
    const steps = flow.toDict().kwargs.tasks as { options: unknown }[];
    assert.deepEqual(steps[1].options, {}, "as Python sends it");
    const step = await flow.applyAsync();
    const first = await firstOf(reader, client, park, 3);
    assert.equal(first.headers.id, step.id, "the priority-7 step is handed out first");
    assert.equal(first.properties.priority, 7);
    assert.deepEqual(first.headers.timelimit, [30, null]);
    assert.equal(first.contentType, "application/x-msgpack");
    await reader.ack([first]);
  } finally {
    await worker.stop();
    await client.close();
    await annotatedApp.close();
    await reader.close();
  }
}

Deno.test({
  name: "canvas step options: a worker sends a chain step with its task's priority (Redis)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("canvas-step-options");
  try {
    const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
    await chainStepTakesTaskOptions(url, url, 9);
  } finally {
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "canvas step options: a worker sends a chain step with its task's priority (RabbitMQ)",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("canvas-step-options");
  try {
    await chainStepTakesTaskOptions(vhost.url("max_priority=10"), "rpc://", 0);
  } finally {
    await vhost.remove();
  }
});

Deno.test({
  name:
    "canvas step options: onError on a chain, a group and a chord calls the errback on a worker",
  ignore: WITHOUT_REDIS,
}, async () => {
  await withAnnotatedWorker("errbacks", async (client) => {
    const sig = (name: string, args: unknown[] = []) => client.signature(name, args);
    const errback = () => {
      const id = crypto.randomUUID();
      return { id, sig: sig("r.noted").set({ taskId: id }) };
    };
    const chained = errback();
    const c = await chain(sig("r.add", [1, 2]), sig("r.fail"), sig("r.add", [1]))
      .onError(chained.sig).applyAsync();
    const grouped = errback();
    const g = await group([sig("r.add", [1, 2]), sig("r.fail", ["g"])]).onError(grouped.sig)
      .applyAsync();
    const chorded = errback();
    const h = await chord([sig("r.fail", ["h"]), sig("r.add", [1, 2])], sig("r.add", [0]))
      .onError(chorded.sig).applyAsync();
    for (const r of [c, g, h]) await assert.rejects(r.get({ timeout: 10_000 }));
    const c2 = c.parent!.id; // the failed step
    const failedMember = g.children[1].id;
    const expected = [[chained.id, c2], [grouped.id, failedMember], [chorded.id, h.id]];
    for (const [id, failed] of expected) {
      const noted = client.asyncResult<string>(id);
      assert.equal(await noted.get({ timeout: 10_000 }), `noted ${failed}`);
    }
  });
});
