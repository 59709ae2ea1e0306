/**
 * Events across languages, with real Python Celery 5.2.6: Celery's own
 * monitor code (`app.events.Receiver` feeding `celery.events.state.State`,
 * what Flower runs) tracks a Celeriac worker started with `-E` as alive and
 * every task through its states, on Redis and RabbitMQ; `celery events
 * --dump` prints its events; a monitor's wakeup gets Celery's heartbeat.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { interopWorker } from "./helpers/interop.ts";
import { Proc, PYTHON } from "./helpers/procs.ts";
import { createVhost, type TestVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const prefix = uniquePrefix("interop-ev");
let vhost: TestVhost | null = null;

interface Seen {
  types: string[];
  workers: Record<string, { alive: boolean; processed: number; sw_ident: string; freq: number }>;
  tasks: Record<string, {
    state: string;
    name: string | null;
    args: string | null;
    kwargs: string | null;
    result: string | null;
    runtime: number | null;
    exception: string | null;
    traceback: string | null;
    hostname: string | null;
    received: number | null;
    started: number | null;
  }>;
}

async function transports(): Promise<
  { name: string; broker: string; pyEnv: Record<string, string> }[]
> {
  vhost ??= await createVhost("interop-events");
  return [
    {
      name: "redis",
      broker: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`,
      pyEnv: { CELERY_BROKER_URL: REDIS_URL, INTEROP_KEYPREFIX: prefix },
    },
    { name: "amqp", broker: vhost.url(), pyEnv: { CELERY_BROKER_URL: vhost.url() } },
  ];
}

const ids: string[] = [];

for (const transport of ["redis", "amqp"]) {
  Deno.test({
    name: `interop events on ${transport}: Celery's State tracks a Celeriac worker and its tasks`,
    ignore: WITHOUT_CELERY,
  }, async () => {
    const t = (await transports()).find((x) => x.name === transport)!;
    const queue = `ev-${crypto.randomUUID().slice(0, 8)}`;
    const hostname = `ev-${crypto.randomUUID().slice(0, 6)}@%h`;
    const monitor = Proc.start("pyevents", PYTHON, ["pyevents.py", "5", "60"], {
      env: { ...t.pyEnv, PYTHONPATH: `${ROOT}tests/interop` },
      cwd: `${ROOT}tests/interop`,
    });
    // The worker starts after the monitor's wakeup: it answers no wakeup, so every heartbeat
    // State sees is a periodic one (freq 2; a wakeup's answer carries Celery's freq 5).
    await monitor.waitFor(/listening/, 30_000).catch(async (e) => {
      await monitor.stop();
      throw e;
    });
    const worker = await interopWorker({ broker: t.broker, backend: REDIS_URL }, queue, [
      "-c",
      "1",
      "-n",
      hostname,
      "-E",
    ]);
    const app = new Celery({ broker: t.broker, backend: REDIS_URL, defaultQueue: queue });
    try {
      const add = await app.sendTask("tasks.add", [2, 3]);
      const fail = await app.sendTask("tasks.fail", ["boom"]);
      const mul = await app.sendTask("tasks.mul", [], { kwargs: { x: 6, y: 7 } });
      const retry = await app.sendTask("tasks.retry_twice", [1]);
      const later = await app.sendTask("tasks.add", [1, 1], { countdown: 60 });
      ids.push(add.id, fail.id, mul.id, retry.id, later.id);
      await add.get({ timeout: 20_000 });
      await app.control.revoke(later.id);
      // Its JSON may still be in the pipe when it exits: wait for the output too.
      const status = await monitor.finished();
      assert.equal(status.code, 0, monitor.output);
      const seen = JSON.parse(monitor.output.trim().split("\n").at(-1)!) as Seen;
      const node = worker.output.match(/(ev-\w+@\S+) ready/)![1];
      const w = seen.workers[node];
      assert.ok(w, `State knows the worker ${node}: ${Object.keys(seen.workers)}`);
      assert.equal(w.alive, true);
      assert.equal(w.sw_ident, "celeriac");
      assert.equal(w.freq, 2);
      assert.equal(typeof w.processed, "number");
      const ok = seen.tasks[add.id];
      assert.equal(ok.state, "SUCCESS");
      assert.equal(ok.name, "tasks.add");
      assert.equal(ok.args, "(2, 3)");
      assert.equal(ok.result, "5");
      assert.equal(ok.hostname, node);
      assert.ok(typeof ok.runtime === "number" && ok.runtime >= 0 && ok.runtime < 5);
      assert.ok(ok.received! <= ok.started!);
      const bad = seen.tasks[fail.id];
      assert.equal(bad.state, "FAILURE");
      assert.equal(bad.exception, "ValueError('boom')");
      assert.match(bad.traceback!, /boom/);
      const kw = seen.tasks[mul.id];
      assert.equal(kw.state, "SUCCESS");
      assert.equal(kw.kwargs, "{'x': 6, 'y': 7}");
      assert.equal(kw.result, "42");
      assert.equal(seen.tasks[retry.id].state, "SUCCESS");
      assert.equal(seen.tasks[later.id].state, "REVOKED");
      for (const type of ["worker-online", "task-received", "task-started"]) {
        assert.ok(seen.types.includes(type), `${type} in ${seen.types}`);
      }
      assert.ok(seen.types.includes("task-retried"));
      assert.ok(seen.types.includes("task-revoked"));
    } finally {
      await app.close();
      await worker.stop();
      await monitor.stop();
    }
  });
}

Deno.test({
  name: "interop events: `celery events --dump` prints a Celeriac worker's events",
  ignore: WITHOUT_CELERY,
}, async () => {
  const t = (await transports())[0];
  const queue = `ev-${crypto.randomUUID().slice(0, 8)}`;
  const worker = await interopWorker({ broker: t.broker, backend: REDIS_URL }, queue, [
    "-c",
    "1",
    "-n",
    "dump@%h",
    "-E",
  ]);
  const dump = Proc.start("celery events --dump", PYTHON, [
    "-m",
    "celery",
    "-A",
    "pytasks",
    "events",
    "--dump",
  ], {
    env: { ...t.pyEnv, CELERY_RESULT_BACKEND: REDIS_URL, PYTHONPATH: `${ROOT}tests/interop` },
    cwd: `${ROOT}tests/interop`,
  });
  const app = new Celery({ broker: t.broker, backend: REDIS_URL, defaultQueue: queue });
  try {
    await dump.waitFor(/dump@\S+ \[.*\] heartbeat: .*sw_ident=celeriac/, 30_000);
    const r = await app.sendTask("tasks.add", [20, 22]);
    ids.push(r.id);
    assert.equal(await r.get({ timeout: 20_000 }), 42);
    const line = (type: string) =>
      new RegExp(`dump@\\S+ \\[.*\\] task ${type}: tasks\\.add\\(${r.id}\\) args=\\(20, 22\\)`);
    await dump.waitFor(line("succeeded"), 20_000);
    assert.match(dump.output, line("received"));
    assert.match(dump.output, line("started"));
    assert.match(
      dump.output,
      new RegExp(`task succeeded: tasks\\.add\\(${r.id}\\).* result=42, runtime=`),
    );
  } finally {
    await app.close();
    await dump.stop("SIGINT");
    await worker.stop();
  }
});

Deno.test({
  name:
    "interop events: a Celery monitor's wakeup gets the Celeriac worker's heartbeat at once, Celery's (freq 5, no counts)",
  ignore: WITHOUT_CELERY,
}, async () => {
  // RabbitMQ: kombu's Receiver declares and binds its event queue before it sends the wakeup.
  // On Redis it sends the wakeup first and SUBSCRIBEs at its first poll, so a reply quicker
  // than that poll is missed (as with a Python worker; Flower then sees the next periodic one).
  const t = (await transports()).find((x) => x.name === "amqp")!;
  const queue = `ev-${crypto.randomUUID().slice(0, 8)}`;
  // No periodic heartbeat within the test: the one seen is the one the wakeup asked for.
  const worker = await interopWorker({ broker: t.broker, backend: REDIS_URL }, queue, [
    "-c",
    "1",
    "-n",
    "wake@%h",
    "--heartbeat-interval",
    "60",
  ]);
  // READY 0: the monitor stops at the first event.
  const monitor = Proc.start("pyevents", PYTHON, ["pyevents.py", "0", "30"], {
    env: { ...t.pyEnv, PYTHONPATH: `${ROOT}tests/interop` },
    cwd: `${ROOT}tests/interop`,
  });
  try {
    const status = await monitor.finished();
    assert.equal(status.code, 0, monitor.output);
    const seen = JSON.parse(monitor.output.trim().split("\n").at(-1)!) as Seen;
    assert.deepEqual(seen.types, ["worker-heartbeat"], monitor.output);
    const node = worker.output.match(/(wake@\S+) ready/)![1];
    const w = seen.workers[node] as Seen["workers"][string] & { active: number | null };
    assert.deepEqual(
      [w.alive, w.freq, w.sw_ident, w.active, w.processed],
      [true, 5, "celeriac", null, null],
      "State took it as a heartbeat; it carried no counts",
    );
  } finally {
    await monitor.stop();
    await worker.stop();
  }
});

Deno.test({ name: "interop events: clean up", ignore: WITHOUT_CELERY }, async () => {
  await deleteResults(ids);
  await deleteKeys(prefix); // kombu bindings, revoked set, rate-limit state under the test's prefix
  await vhost?.remove();
});
