/**
 * Routing (`taskRoutes`, Celery's task_routes) and annotations
 * (`taskAnnotations`, Celery's task_annotations): the pure rules, what the
 * client publishes, and a real worker applying annotations from its app.
 */

import assert from "node:assert/strict";
import { Celery, chain, group, type TaskError } from "../mod.ts";
import { type Message, PUBLISHER, type PublishTarget } from "../protocol.ts";
import { annotate, type TaskAnnotations } from "../src/client/annotations.ts";
import { compileRoutes, globToRegExp } from "../src/client/routes.ts";
import { Worker } from "../src/worker/worker.ts";
import { app as annotatedApp } from "./apps/annotated_app.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/** An app that records what it would publish instead of connecting. */
function capturing(options: ConstructorParameters<typeof Celery>[0]) {
  const app = new Celery({ broker: "kv://:memory:", backend: null, ...options });
  const sent: { message: Message; target: PublishTarget }[] = [];
  app[PUBLISHER] = (message, target) => {
    sent.push({ message, target });
    return Promise.resolve();
  };
  return { app, sent };
}

Deno.test("routing: glob patterns read as Python's fnmatch", () => {
  assert.ok(globToRegExp("feeds.*").test("feeds.fetch.all"));
  assert.ok(!globToRegExp("feeds.*").test("feedsXfetch"), "the dot is literal");
  assert.ok(globToRegExp("v?.run").test("v2.run"));
  assert.ok(globToRegExp("t.[!a]*").test("t.mul"));
  assert.ok(!globToRegExp("t.[!a]*").test("t.add"));
  assert.ok(!globToRegExp("*.add").test("tasks.add.x"));
});

Deno.test("routing: exact names first, then patterns in order, then the next router", () => {
  const route = compileRoutes([
    new Map<string | RegExp, string | { queue: string; priority?: number }>([
      ["tasks.*", "glob"],
      [/^tasks\.a/, "regexp"],
      ["tasks.add", { queue: "exact", priority: 2 }],
    ]),
    { "video.*": "video" },
    (name, args) => name === "fn" ? `fn-${args.length}` : undefined,
  ]);
  assert.deepEqual(route("tasks.add", [], {}, {}), { queue: "exact", priority: 2 });
  assert.deepEqual(route("tasks.abc", [], {}, {}), { queue: "glob" }, "first pattern wins");
  assert.deepEqual(route("video.encode", [], {}, {}), { queue: "video" });
  assert.deepEqual(route("fn", [1, 2], {}, {}), { queue: "fn-2" });
  assert.equal(route("other", [], {}, {}), null);
  assert.throws(() => compileRoutes([42 as never]), /taskRoutes\[0\] must be a map/);
});

Deno.test("routing: the route fills what the call and the task leave unset", async () => {
  const { app, sent } = capturing({
    defaultQueue: "default",
    taskRoutes: {
      "tasks.*": { queue: "math", priority: 7 },
      "topic.*": { exchange: "events", routingKey: "topic.x" },
    },
  });
  const add = app.task("tasks.add", (a: number, b: number) => a + b);
  const own = app.task("tasks.own", { queue: "own" }, () => 1);
  await add.delay(1, 2);
  await add.applyAsync([1, 2], { queue: "call", priority: 1 });
  await own.delay();
  await app.sendTask("topic.new", []);
  await app.sendTask("unrouted", []);
  assert.deepEqual(sent.map((s) => [s.target.exchange, s.target.routingKey]), [
    ["", "math"],
    ["", "call"],
    ["", "own"],
    ["events", "topic.x"],
    ["", "default"],
  ]);
  assert.equal(sent[0].message.properties.priority, 7);
  assert.equal(sent[1].message.properties.priority, 1);
  assert.equal(
    sent[2].message.properties.priority,
    7,
    "the task's queue wins, the route's priority stays",
  );
  await app.close();
});

Deno.test("routing: a route's ignoreResult is not applied, as Celery 5.2.6's router leaves ignore_result alone", async () => {
  // A real Celery 5.2.6 client with task_routes {"t.one": {"queue": …, "ignore_result": True}}:
  // AsyncResult.ignored False, header ignore_result False, the worker stored the result. A
  // task's own ignore_result and the call's do apply (ignored True, header True).
  const { app, sent } = capturing({
    taskRoutes: { "tasks.*": { queue: "math", ignoreResult: true } },
  });
  const add = app.task("tasks.add", (a: number, b: number) => a + b);
  const quiet = app.task("tasks.quiet", { ignoreResult: true }, () => 1);
  const handles = [
    await add.delay(1, 2),
    await app.sendTask("tasks.add", [1, 2]),
    await app.sendMany([{ name: "tasks.add", args: [1, 2] }]).then((rs) => rs[0]),
    await quiet.delay(),
    await add.applyAsync([1, 2], { ignoreResult: true }),
  ];
  await chain(add.s(1, 2), add.s(3)).applyAsync();
  assert.deepEqual(handles.map((h) => h.ignored), [false, false, false, true, true]);
  assert.deepEqual(
    sent.map((s) => [s.target.routingKey, s.message.headers.ignore_result]),
    [...Array(3).fill(["math", false]), ["math", true], ["math", true], ["math", false]],
  );
  await app.close();
});

Deno.test("routing: chain steps and group members take their route's queue, exchange, routing key and priority", async () => {
  const { app, sent } = capturing({
    taskRoutes: {
      "feeds.*": { queue: "feeds", priority: 9 },
      "topic.*": { exchange: "events", routingKey: "topic.x" },
    },
  });
  const fetch = app.task("feeds.fetch", (a: number) => a);
  const emit = app.task("topic.emit", (a: number) => a);
  await chain(fetch.s(1), emit.s()).applyAsync();
  await group([emit.s(1), fetch.s(2).set({ priority: 1 })]).applyAsync();
  assert.deepEqual(
    sent.map((s) => [s.target.exchange, s.target.routingKey, s.message.properties.priority]),
    [["", "feeds", 9], ["events", "topic.x", 0], ["", "feeds", 1]],
  );
  await app.close();
});

Deno.test({
  name: "routing: a worker sends a chain's next step where its app's routes send it",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("routing-chain");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const first = `first-${crypto.randomUUID().slice(0, 8)}`;
  const second = `second-${crypto.randomUUID().slice(0, 8)}`;
  const routes = { "r.add": first, "r.mul": second };
  annotatedApp.configure({ broker: url, backend: url, taskRoutes: routes });
  const worker = new Worker({
    app: annotatedApp,
    appModule: new URL("./apps/annotated_app.ts", import.meta.url).href,
    queues: [first, second],
    concurrency: 1,
  });
  const client = new Celery({ broker: url, backend: url, taskRoutes: routes });
  await worker.start();
  try {
    const flow = chain(client.signature("r.add", [2, 3]), client.signature("r.mul", [4]));
    const product = await flow.applyAsync();
    assert.equal(await product.get({ timeout: 10_000 }), 20);
    assert.equal(await client.queueDepth("celery"), 0, "nothing went to the default queue");
  } finally {
    await worker.stop();
    await client.close();
    await annotatedApp.close();
    await deleteKeys(prefix);
  }
});

Deno.test("annotations: by name, then '*' (as in Celery), over the task's own options", () => {
  const annotations: TaskAnnotations = [
    { "tasks.add": { rateLimit: "10/s", acksLate: false, queue: "a" } },
    (name: string) => name.startsWith("tasks.") ? { trackStarted: true } : null,
    { "*": { acksLate: true } },
  ];
  assert.deepEqual(annotate(annotations, "tasks.add", { queue: "own", bind: true }), {
    queue: "a",
    bind: true,
    rateLimit: "10/s",
    acksLate: true,
  });
  assert.deepEqual(annotate(annotations, "tasks.mul", {}), { trackStarted: true, acksLate: true });
  assert.deepEqual(annotate(null, "x", { queue: "q" }), { queue: "q" });
  assert.throws(
    () => annotate({ "*": { bind: true } as never }, "x", {}),
    /cannot change "bind"/,
  );
});

Deno.test("annotations: apply to app.task(), are checked there, and must come before tasks", async () => {
  const { app, sent } = capturing({
    taskAnnotations: { "tasks.add": { queue: "annotated", rateLimit: "5/m" } },
  });
  const add = app.task("tasks.add", (a: number, b: number) => a + b);
  assert.equal(add.options.rateLimit, "5/m");
  await add.delay(1, 2);
  assert.equal(sent[0].target.routingKey, "annotated");
  assert.throws(
    () => app.configure({ taskAnnotations: { "*": { acksLate: true } } }),
    /taskAnnotations must be set before tasks are defined/,
  );
  const bad = new Celery({
    broker: "kv://:memory:",
    taskAnnotations: { "*": { rateLimit: "often" } },
  });
  assert.throws(() => bad.task("t", () => 1), /rateLimit of task "t"/);
  await app.close();
});

Deno.test({
  name:
    "routing and annotations: a routed call reaches the worker of its queue, which applies its app's annotations",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("routing");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `routed-${crypto.randomUUID().slice(0, 8)}`;
  annotatedApp.configure({ broker: url, backend: url });
  const worker = new Worker({
    app: annotatedApp,
    appModule: new URL("./apps/annotated_app.ts", import.meta.url).href,
    queues: [queue],
    concurrency: 1,
  });
  // The client has routes and no annotations: what the worker does comes from its own app.
  const client = new Celery({ broker: url, backend: url, taskRoutes: { "r.*": queue } });
  await worker.start();
  try {
    const sum = await client.sendTask<number>("r.add", [2, 3]);
    assert.equal(await sum.get({ timeout: 10_000 }), 5);
    const slow = await client.sendTask<number>("r.sleep", [5_000]);
    await assert.rejects(slow.get({ timeout: 10_000 }), (err: TaskError) => {
      assert.equal(err.excType, "TimeLimitExceeded");
      return true;
    });
    assert.equal(await client.queueDepth("celery"), 0, "nothing went to the default queue");
  } finally {
    await worker.stop();
    await client.close();
    await annotatedApp.close();
    await deleteKeys(prefix);
  }
});
