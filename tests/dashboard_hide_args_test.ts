/**
 * `--hide-args` on the worker page: the active, reserved and scheduled
 * tasks of the inspect replies (as a Celery 5.2.6 worker and Celeriac
 * send them) show their args and kwargs masked, as the task pages do.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard, type DashboardEvent, type Inspector } from "../dashboard.ts";

const request = (id: string) => ({
  id,
  name: "tasks.charge",
  args: ["4111 1111 1111 1111"],
  kwargs: { cvv: "123" },
  type: "tasks.charge",
  hostname: "w@h",
  delivery_info: { exchange: "", routing_key: "celery", priority: 0, redelivered: false },
});

const inspector: Inspector = (command) => {
  const replies: Record<string, unknown> = {
    active: [request("a1")],
    reserved: [request("r1")],
    scheduled: [{ eta: "2026-01-01T00:00:00+00:00", priority: 6, request: request("s1") }],
    registered: ["tasks.charge"],
    stats: { pool: { "max-concurrency": 1 } },
  };
  return Promise.resolve({ "w@h": replies[command] });
};

Deno.test("dashboard --hide-args: inspect replies on the worker page are masked", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const online: DashboardEvent = {
    type: "worker-online",
    hostname: "w@h",
    timestamp: Date.now() / 1000,
    freq: 2,
  };
  const d = new Dashboard({
    app,
    port: 0,
    events: async function* () {
      yield online;
    },
    enableEvents: false,
    inspector,
    hideArgs: true,
  });
  const { url } = await d.start();
  try {
    for (let i = 0; i < 200 && !d.model.workers.get("w@h"); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const text = await (await fetch(`${url}/api/workers/w%40h`)).text();
    assert.doesNotMatch(text, /4111|cvv/);
    const { inspect } = JSON.parse(text);
    assert.deepEqual(
      [inspect.active[0], inspect.reserved[0], inspect.scheduled[0].request].map((r) => [
        r.id,
        r.args,
        r.kwargs,
      ]),
      [["a1", "•••", "•••"], ["r1", "•••", "•••"], ["s1", "•••", "•••"]],
    );
    assert.deepEqual(inspect.registered, ["tasks.charge"]);
  } finally {
    await d.stop();
    await app.close();
  }
});

Deno.test("dashboard --hide-args: a failed task's exception message and traceback text are masked", async () => {
  // The exception's repr and its traceback's message line showed the args that --hide-args hid.
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const at = Date.now() / 1000;
  const events: DashboardEvent[] = [
    { type: "worker-online", hostname: "w@h", timestamp: at, freq: 2 },
    {
      type: "task-received",
      hostname: "w@h",
      timestamp: at,
      uuid: "f1",
      name: "tasks.charge",
      args: "['4111 1111 1111 1111']",
      kwargs: "{'cvv': '123'}",
    },
    {
      type: "task-failed",
      hostname: "w@h",
      timestamp: at + 1,
      uuid: "f1",
      exception: "ValueError('card 4111 1111 1111 1111 declined, cvv 123')",
      traceback: "Traceback (most recent call last):\n" +
        '  File "/srv/tasks.py", line 12, in charge\n' +
        "    raise ValueError(f'card {card} declined, cvv {cvv}')\n" +
        "ValueError: card 4111 1111 1111 1111 declined, cvv 123\n",
    },
    {
      type: "task-failed",
      hostname: "w@h",
      timestamp: at + 1,
      uuid: "f2",
      name: "tasks.charge",
      exception: "Error('card 4111 1111 1111 1111 declined')",
      traceback: "Error: card 4111 1111 1111 1111 declined\n" +
        "    at charge (file:///srv/tasks.ts:12:9)",
    },
  ];
  const d = new Dashboard({
    app,
    port: 0,
    events: async function* () {
      yield* events;
    },
    enableEvents: false,
    inspector,
    hideArgs: true,
  });
  const { url } = await d.start();
  try {
    for (let i = 0; i < 200 && !d.model.tasks.get("f2"); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const list = await (await fetch(`${url}/api/tasks`)).text();
    const one = await (await fetch(`${url}/api/tasks/f1`)).text();
    const js = await (await fetch(`${url}/api/tasks/f2`)).text();
    for (const text of [list, one, js]) assert.doesNotMatch(text, /4111|cvv/);
    const { task } = JSON.parse(one);
    assert.equal(task.exception, "ValueError(•••)");
    assert.equal(
      task.traceback,
      'Traceback (most recent call last):\n  File "/srv/tasks.py", line 12, in charge\n•••',
    );
    const f2 = JSON.parse(js).task;
    assert.equal(f2.exception, "Error(•••)");
    assert.equal(f2.traceback, "•••\n    at charge (file:///srv/tasks.ts:12:9)");
  } finally {
    await d.stop();
    await app.close();
  }
});

Deno.test("dashboard --hide-args: a malformed message's parked reason does not quote its args", async () => {
  // The reason a worker parks a protocol-1 message whose args are a string with quotes the string
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const d = new Dashboard({
    app,
    port: 0,
    events: async function* () {},
    enableEvents: false,
    inspector,
    hideArgs: true,
  });
  const { url } = await d.start();
  try {
    const broker = await app.broker();
    const reasons = [
      'malformed task message: Task args must be an array, got "4111 1111 1111 1111"',
      "malformed task message: Task kwargs must be an object, got 4111111111111111",
      'unregistered task "tasks.charge"',
    ];
    for (const reason of reasons) {
      await app.sendTask("tasks.charge", [], { queue: "hide" });
      const [m] = await broker.take(["hide"], { max: 1, signal: AbortSignal.timeout(2000) });
      await broker.reject([{ delivery: m, reason }]);
    }
    const text = await (await fetch(`${url}/api/parked`)).text();
    assert.doesNotMatch(text, /4111/);
    assert.deepEqual(
      (JSON.parse(text).parked as { reason: string }[]).map((p) => p.reason).sort(),
      [
        "malformed task message: Task args must be an array, got •••",
        "malformed task message: Task kwargs must be an object, got •••",
        'unregistered task "tasks.charge"',
      ],
    );
  } finally {
    await d.stop();
    await app.close();
  }
});
