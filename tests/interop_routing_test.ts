/**
 * Routing interop with real Python Celery 5.2.6, on Redis and RabbitMQ: for
 * the same call options and task routes (queue, exchange, routing key, and
 * their combinations), a Celeriac client's message lands in the queue
 * Python's does, with the exchange and routing key a consumer sees from
 * Python's (tests/interop/pyroute.py sends and collects), sent alone or as
 * a canvas member; and a worker whose queues are bound to named exchanges
 * (direct and topic) receives what the other side sends to them.
 */

import assert from "node:assert/strict";
import { Celery, group } from "../mod.ts";
import type { ApplyOptions } from "../src/client/task_options.ts";
import { topicPattern } from "../src/broker/redis_keys.ts";
import type { TaskRoutes } from "../src/client/routes.ts";
import { CeleryCliSession, interopWorker, pythonCalls, pythonEnv } from "./helpers/interop.ts";
import { celeryWorker, PYTHON, runPython } from "./helpers/procs.ts";
import { createVhost, type TestVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";

/** A Celery call's options, snake_case, and the Celeriac call's. */
interface Case {
  py: Record<string, string>;
  ts: ApplyOptions;
  pyRoutes?: Record<string, Record<string, string>>;
  tsRoutes?: TaskRoutes;
}

/** Where each message was found: queue -> [exchange, routing key, task name] per message. */
type Landing = Record<string, [string, string, string][]>;

/** The names one test uses: default queue, other queues, exchanges, keys. */
function names(p: string) {
  return {
    q0: `${p}q0`,
    qa: `${p}qa`,
    qb: `${p}qb`,
    qt: `${p}qt`,
    ex: `${p}ex`,
    tx: `${p}tx`,
    /** A routing key that is also a queue's name: a message sent to it by mistake is seen. */
    rk: `${p}rk`,
  };
}

function cases(n: ReturnType<typeof names>): Case[] {
  const { qa, ex, rk } = n;
  return [
    { py: {}, ts: {} },
    { py: { queue: qa }, ts: { queue: qa } },
    { py: { routing_key: rk }, ts: { routingKey: rk } },
    { py: { queue: qa, routing_key: rk }, ts: { queue: qa, routingKey: rk } },
    { py: { exchange: ex }, ts: { exchange: ex } },
    { py: { queue: qa, exchange: ex }, ts: { queue: qa, exchange: ex } },
    { py: { exchange: ex, routing_key: "rk" }, ts: { exchange: ex, routingKey: "rk" } },
    {
      py: { queue: qa, exchange: ex, routing_key: "rk" },
      ts: { queue: qa, exchange: ex, routingKey: "rk" },
    },
    {
      py: {},
      ts: {},
      pyRoutes: { t: { queue: qa, routing_key: rk } },
      tsRoutes: { t: { queue: qa, routingKey: rk } },
    },
    { py: {}, ts: {}, pyRoutes: { t: { routing_key: rk } }, tsRoutes: { t: { routingKey: rk } } },
    {
      py: {},
      ts: {},
      pyRoutes: { t: { exchange: ex, routing_key: "rk" } },
      tsRoutes: { t: { exchange: ex, routingKey: "rk" } },
    },
  ];
}

async function pyroute(broker: string, queue: string, mode: string, arg: unknown) {
  const env = { CELERY_BROKER_URL: broker, INTEROP_QUEUE: queue };
  return JSON.parse(await runPython("pyroute.py", [mode, JSON.stringify(arg)], env));
}

/**
 * One `pyroute.py session` process on `broker`: each {@linkcode PyRouteSession.run} is one
 * pyroute.py command, answered in turn, for a Python start per test instead of per command.
 * Commands run one at a time (the caller awaits each).
 */
class PyRouteSession {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: ReadableStreamDefaultReader<string>;
  readonly #stderr: Promise<string>;
  #buffered = "";

  constructor(broker: string) {
    const cwd = new URL("./interop/", import.meta.url).pathname;
    this.#child = new Deno.Command(PYTHON, {
      args: ["pyroute.py", "session"],
      cwd,
      env: { CELERY_BROKER_URL: broker },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    this.#stderr = new Response(this.#child.stderr).text();
  }

  /** Run `pyroute.py <mode> <arg>` in the session and return what it printed, parsed. */
  async run<T>(mode: string, arg: unknown): Promise<T> {
    await this.#stdin.write(new TextEncoder().encode(JSON.stringify([mode, arg]) + "\n"));
    while (!this.#buffered.includes("\n")) {
      const { done, value } = await this.#lines.read();
      if (done) throw new Error(`pyroute.py session ended:\n${await this.#stderr}`);
      this.#buffered += value;
    }
    const end = this.#buffered.indexOf("\n");
    const line = this.#buffered.slice(0, end);
    this.#buffered = this.#buffered.slice(end + 1);
    return JSON.parse(line) as T;
  }

  /** End the process (its stdin closed) and wait for it. */
  async close(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    while (!(await this.#lines.read()).done) {
      // the process ends at the end of its stdin
    }
    await this.#child.status;
    await this.#stderr;
  }
}

/** The queues bound to named exchanges: `qb` to the direct `ex` by `rk`, `qt` to the topic `tx`. */
function boundQueues(n: ReturnType<typeof names>) {
  return [
    { queue: n.qb, exchange: n.ex, key: "rk" },
    { queue: n.qt, exchange: n.tx, type: "topic", key: "a.*" },
  ];
}

/**
 * Each case's landing from Python and from Celeriac, side by side. Every case has names of its
 * own (queues, exchanges, keys under `<prefix>c<i>-`), so one Python process sends them all and
 * one collects them all: a message routed by another case's options lands in no queue of this
 * one's, and the per-case comparison tells them apart.
 */
async function compareLandings(broker: string, prefix: string): Promise<void> {
  const all = cases(names("")).map((_, i) => {
    const n = names(`${prefix}c${i}-`);
    return { n, c: cases(n)[i], queues: [n.q0, n.qa, n.qb, n.qt, n.rk] };
  });
  const py = new PyRouteSession(broker);
  const collect = async (): Promise<Landing[]> => {
    const got = await py.run<Landing>("collect", all.flatMap((a) => a.queues));
    return all.map(({ queues }) => Object.fromEntries(queues.map((q) => [q, got[q]])));
  };
  const apps = all.map(({ n, c }) =>
    new Celery({ broker, defaultQueue: n.q0, taskRoutes: c.tsRoutes })
  );
  const call = ({ c }: typeof all[number]) =>
    `options ${JSON.stringify(c.ts)}, routes ${JSON.stringify(c.tsRoutes ?? null)}`;
  try {
    await py.run("declare", all.flatMap(({ n }) => boundQueues(n)));
    await collect(); // declares every queue, as a worker consuming it would
    await py.run(
      "send",
      all.map(({ n, c }) => ({ options: c.py, routes: c.pyRoutes ?? null, default_queue: n.q0 })),
    );
    const fromPython = await collect();
    await Promise.all(all.map(({ c }, i) => apps[i].sendTask("t", [], c.ts)));
    const fromSendTask = await collect();
    await Promise.all(
      all.map(({ c }, i) => group([apps[i].signature("t", [], {}, c.ts)]).applyAsync()),
    );
    const fromGroup = await collect();
    all.forEach((a, i) => {
      assert.equal(
        Object.values(fromPython[i]).flat().length,
        1,
        `${JSON.stringify(a.c.py)} sent once`,
      );
      assert.deepEqual(fromSendTask[i], fromPython[i], `sendTask: ${call(a)}`);
      assert.deepEqual(fromGroup[i], fromPython[i], `a group member: ${call(a)}`);
    });
  } finally {
    await Promise.all([...apps.map((app) => app.close()), py.close()]);
  }
}

const ignoreAmqp = WITHOUT_CELERY || WITHOUT_RABBITMQ;

async function onVhost(fn: (broker: string) => Promise<void>): Promise<void> {
  const vhost: TestVhost = await createVhost("routing");
  try {
    await fn(vhost.url());
  } finally {
    await vhost.remove();
  }
}

async function onRedis(fn: (broker: string, prefix: string) => Promise<void>): Promise<void> {
  const prefix = uniquePrefix("routing");
  try {
    await fn(REDIS_URL, prefix);
  } finally {
    await deleteKeys(prefix);
    await deleteKeys(`_kombu.binding.${prefix}`);
  }
}

Deno.test({
  name: "routing on Redis: a Celeriac client's message lands where Python Celery's does",
  ignore: WITHOUT_CELERY,
}, async () => {
  await onRedis((broker, prefix) => compareLandings(broker, prefix));
});

Deno.test({
  name: "routing on RabbitMQ: a Celeriac client's message lands where Python Celery's does",
  ignore: ignoreAmqp,
}, async () => {
  await onVhost((broker) => compareLandings(broker, ""));
});

/**
 * A worker whose queues are bound to named exchanges (`qb` to the direct
 * `ex` with key `rk`, `qt` to the topic `tx` with `a.*`, as a Celery app's
 * `task_queues` declares them) gets what the other side sends there: a
 * Celery client's sends to a Celeriac worker, a Celeriac client's to a
 * Celery worker. On Redis a Celery client matches a topic binding only for
 * an exchange its own process declared (kombu keeps exchange types in
 * memory; any other is direct, so `a.b` matches no `a.*` and the message is
 * dropped): `pyTopic` false leaves that send out.
 */
async function exchangeBoundWorkers(
  broker: string,
  n: ReturnType<typeof names>,
  pyTopic: boolean,
): Promise<void> {
  const bound = boundQueues(n);
  const taskQueues = { INTEROP_TASK_QUEUES: JSON.stringify(bound) };
  const urls = { broker, backend: REDIS_URL };
  const ids: string[] = [];
  try {
    await pyroute(broker, n.q0, "declare", bound);
    const worker = await interopWorker(urls, `${n.qb},${n.qt}`, ["-c", "1"]);
    try {
      const out = await pythonCalls({ ...pythonEnv(urls, n.q0), ...taskQueues }, [
        { task: "tasks.add", args: [1, 2], options: { exchange: n.ex, routing_key: "rk" } },
        // task_queues' topic queue: Celery sends to tx with the binding key a.* itself.
        { task: "tasks.add", args: [5, 6], options: { queue: n.qt } },
        ...pyTopic
          ? [{ task: "tasks.add", args: [3, 4], options: { exchange: n.tx, routing_key: "a.b" } }]
          : [],
      ]);
      ids.push(...out.map((o) => o.id));
      assert.deepEqual(out.map((o) => o.ok), pyTopic ? [3, 11, 7] : [3, 11], JSON.stringify(out));
    } finally {
      await worker.stop();
    }
    const py = await celeryWorker(["-P", "solo", "-Q", `${n.qb},${n.qt}`], {
      ...pythonEnv(urls, n.qb),
      ...taskQueues,
    });
    const app = new Celery({ broker, backend: REDIS_URL, defaultQueue: n.q0 });
    try {
      const results = [
        await app.sendTask("py.mul", [2, 3], { exchange: n.ex, routingKey: "rk" }),
        await app.sendTask("py.mul", [4, 5], { exchange: n.tx, routingKey: "a.b" }),
      ];
      ids.push(...results.map((r) => r.id));
      assert.deepEqual(await Promise.all(results.map((r) => r.get({ timeout: 30_000 }))), [6, 20]);
    } finally {
      await app.close();
      await py.stop();
    }
  } finally {
    await deleteResults(ids);
  }
}

Deno.test({
  name: "routing on Redis: workers on queues bound to named exchanges get the other side's sends",
  ignore: WITHOUT_CELERY,
}, async () => {
  await onRedis((broker, prefix) => exchangeBoundWorkers(broker, names(prefix), false));
});

Deno.test({
  name:
    "routing on RabbitMQ: workers on queues bound to named exchanges get the other side's sends",
  ignore: ignoreAmqp,
}, async () => {
  await onVhost((broker) => exchangeBoundWorkers(broker, names(""), true));
});

/**
 * Python's `celery control add_consumer <queue> <exchange> <type> <key>`
 * makes a Celeriac worker consume the queue bound to that exchange, as a
 * Celery worker binds it: a Python client's send to the direct exchange and
 * a Celeriac client's to the topic one reach it (on RabbitMQ also Python's
 * topic send; see {@link exchangeBoundWorkers} for Redis). With `idleFirst`, first (on the
 * fresh worker, idle on its one queue) a plain `add_consumer <queue>`, and a Python client's
 * send to that queue runs: on Redis, one worker for both.
 */
async function addConsumerBinds(
  broker: string,
  n: ReturnType<typeof names>,
  pyTopic: boolean,
  idleFirst = false,
): Promise<void> {
  const urls = { broker, backend: REDIS_URL };
  const node = `routing-${crypto.randomUUID().slice(0, 8)}@test`;
  const ids: string[] = [];
  const worker = await interopWorker(urls, n.q0, ["-n", node, "-c", "1"]);
  const celery = new CeleryCliSession(pythonEnv(urls, n.q0));
  const app = new Celery({ broker, backend: REDIS_URL, defaultQueue: n.q0 });
  try {
    if (idleFirst) {
      const out = await celery.run(["control", "add_consumer", n.qa, "-d", node, "--json"]);
      assert.deepEqual(JSON.parse(out.stdout), [{ [node]: { ok: `add consumer ${n.qa}` } }]);
      const sent = await pythonCalls(pythonEnv(urls, n.qa), [{ task: "tasks.add", args: [1, 2] }]);
      ids.push(...sent.map((o) => o.id));
      assert.deepEqual(sent.map((o) => o.ok), [3], JSON.stringify(sent));
    }
    for (const args of [[n.qb, n.ex, "direct", "rk"], [n.qt, n.tx, "topic", "a.*"]]) {
      const out = await celery.run(["control", "add_consumer", ...args, "-d", node, "--json"]);
      assert.deepEqual(JSON.parse(out.stdout), [{ [node]: { ok: `add consumer ${args[0]}` } }]);
    }
    const listed = await celery.run(["inspect", "active_queues", "-d", node, "--json"]);
    const parsed = JSON.parse(listed.stdout);
    const replies = Array.isArray(parsed) ? Object.assign({}, ...parsed) : parsed;
    const qt = (replies[node] as Record<string, unknown>[]).find((q) => q.name === n.qt)!;
    assert.deepEqual(
      [
        (qt.exchange as { name: string }).name,
        (qt.exchange as { type: string }).type,
        qt.routing_key,
      ],
      [n.tx, "topic", "a.*"],
    );
    const fromPython = await pythonCalls(pythonEnv(urls, n.q0), [
      { task: "tasks.add", args: [1, 2], options: { exchange: n.ex, routing_key: "rk" } },
      ...pyTopic
        ? [{ task: "tasks.add", args: [3, 4], options: { exchange: n.tx, routing_key: "a.b" } }]
        : [],
    ]);
    ids.push(...fromPython.map((o) => o.id));
    assert.deepEqual(
      fromPython.map((o) => o.ok),
      pyTopic ? [3, 7] : [3],
      JSON.stringify(fromPython),
    );
    const r = await app.sendTask("tasks.add", [7, 8], { exchange: n.tx, routingKey: "a.b" });
    ids.push(r.id);
    assert.equal(await r.get({ timeout: 30_000 }), 15);
  } finally {
    await app.close();
    await celery.close();
    await worker.stop();
    await deleteResults(ids);
  }
}

Deno.test({
  name:
    "routing on Redis: an idle Celeriac worker takes from a queue celery control add_consumer added; with an exchange it binds the queue",
  ignore: WITHOUT_CELERY,
}, async () => {
  await onRedis((broker, prefix) => addConsumerBinds(broker, names(prefix), false, true));
});

Deno.test({
  name:
    "routing on RabbitMQ: celery control add_consumer with an exchange binds a Celeriac worker's queue",
  ignore: ignoreAmqp,
}, async () => {
  await onVhost((broker) => addConsumerBinds(broker, names(""), true));
});

Deno.test({
  name: "routing on Redis: a topic binding's pattern is the one kombu stores for the same key",
  ignore: WITHOUT_CELERY,
}, async () => {
  const keys = ["a.*", "a.#", "#", "*.b.*", "order.paid", "a-b.*", "x+y.#.z", "w*.é", "a\\b"];
  const expected = await pyroute(REDIS_URL, "unused", "patterns", keys);
  assert.deepEqual(Object.fromEntries(keys.map((k) => [k, topicPattern(k)])), expected);
});
