/**
 * `celery inspect` and `celery control`, run by real Python Celery 5.2.6
 * against a Celeriac worker on Redis and RabbitMQ: every command prints the
 * field set and types a Python worker's reply has (checked against the
 * replies captured from Celery 5.2.6).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { CeleryCliSession, interopWorker } from "./helpers/interop.ts";
import { celeryWorker } from "./helpers/procs.ts";
import { createVhost, type TestVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const prefix = uniquePrefix("interop-insp");
let vhost: TestVhost | null = null;
const ids: string[] = [];

const fixture = JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/celery-5.2/redis/control_replies.json", import.meta.url),
  ),
) as { replies: Record<string, unknown> };
/** The reply of Celery's worker to a captured command. */
function theirs(command: string): unknown {
  const r = fixture.replies[command];
  const byNode = Array.isArray(r) ? r[0] : r;
  return Object.values(byNode as Record<string, unknown>)[0];
}
const keys = (o: unknown) => Object.keys(o as object).sort();

async function celery(cli: CeleryCliSession, args: string[]): Promise<string> {
  const out = await cli.run(args);
  assert.equal(out.code, 0, out.stdout + out.stderr);
  return out.stdout;
}

for (const transport of ["redis", "amqp"]) {
  Deno.test({
    name: `interop inspect on ${transport}: celery inspect/control get Celery's reply shapes`,
    ignore: WITHOUT_CELERY,
  }, async () => {
    vhost ??= await createVhost("interop-inspect");
    const broker = transport === "redis"
      ? `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`
      : vhost.url();
    const env: Record<string, string> = transport === "redis"
      ? { CELERY_BROKER_URL: REDIS_URL, INTEROP_KEYPREFIX: prefix }
      : { CELERY_BROKER_URL: vhost.url() };
    const queue = `insp-${crypto.randomUUID().slice(0, 8)}`;
    const worker = await interopWorker({ broker, backend: REDIS_URL }, queue, [
      "-c",
      "1",
      "-n",
      `insp-${transport}@%h`,
    ]);
    const node = worker.output.match(/(insp-\w+@\S+) ready/)![1];
    const app = new Celery({ broker, backend: REDIS_URL, defaultQueue: queue });
    // Every command below runs Python's `celery` entry point in this one Python process.
    const cli = new CeleryCliSession({ ...env, CELERY_RESULT_BACKEND: REDIS_URL });
    const ask = async (args: string[]) => {
      const out = await celery(cli, [...args, "--json", "-d", node, "--timeout", "5"]);
      const printed = JSON.parse(out.trim().split("\n").at(-1)!) as unknown;
      // `inspect` prints {node: reply}; `control` a list of them.
      const replies = Array.isArray(printed)
        ? Object.assign({}, ...printed) as Record<string, unknown>
        : printed as Record<string, unknown>;
      assert.deepEqual(Object.keys(replies), [node], out);
      return replies[node];
    };
    try {
      assert.deepEqual(await ask(["inspect", "ping"]), { ok: "pong" });
      // One token an hour: the waiting task stays reserved however slow the inspect calls are
      // under load (with 1/m it ran after a minute of slow calls and query_task missed it).
      assert.deepEqual(
        await ask(["control", "rate_limit", "tasks.add", "1/h"]),
        { ok: "new rate limit set successfully" },
      );
      const running = await app.sendTask("tasks.sleep", [300]);
      const first = await app.sendTask("tasks.add", [1, 2]);
      const waiting = await app.sendTask("tasks.add", [3, 4]);
      const later = await app.sendTask("tasks.add", [5, 6], { countdown: 600 });
      ids.push(running.id, first.id, waiting.id, later.id);
      assert.equal(await first.get({ timeout: 20_000 }), 3);

      const active = await ask(["inspect", "active"]) as Record<string, unknown>[];
      const mine = active.find((t) => t.id === running.id)!;
      const pyActive = (theirs("inspect_active") as Record<string, unknown>[])[0];
      assert.deepEqual(keys(mine), keys(pyActive));
      assert.deepEqual(keys(mine.delivery_info), keys(pyActive.delivery_info));
      assert.equal(mine.name, "tasks.sleep");
      assert.deepEqual(mine.args, [300]);
      assert.equal(typeof mine.time_start, "number");
      assert.equal(typeof mine.worker_pid, "number");
      assert.equal(mine.hostname, node);

      const reserved = await ask(["inspect", "reserved"]) as Record<string, unknown>[];
      const held = reserved.find((t) => t.id === waiting.id)!;
      assert.ok(held, JSON.stringify(reserved));
      assert.deepEqual(keys(held), keys(pyActive));
      assert.equal(held.time_start, null);
      assert.equal(held.acknowledged, false);

      const scheduled = await ask(["inspect", "scheduled"]) as Record<string, unknown>[];
      const eta = scheduled.find((s) => (s.request as { id: string }).id === later.id)!;
      const pyScheduled = (theirs("inspect_scheduled") as Record<string, unknown>[])[0];
      assert.deepEqual(keys(eta), keys(pyScheduled));
      assert.deepEqual(keys(eta.request), keys(pyScheduled.request));
      assert.match(String(eta.eta), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);

      const query = await ask(["inspect", "query_task", running.id, waiting.id]) as Record<
        string,
        [string, unknown]
      >;
      assert.equal(query[running.id][0], "active");
      assert.equal(query[waiting.id][0], "reserved");

      const stats = await ask(["inspect", "stats"]) as Record<string, Record<string, unknown>>;
      const pyStats = theirs("inspect_stats") as Record<string, Record<string, unknown>>;
      for (const k of keys(pyStats)) assert.ok(k in stats, `stats.${k}`);
      assert.deepEqual(keys(stats.broker), keys(pyStats.broker));
      for (const k of ["max-concurrency", "processes", "max-tasks-per-child", "timeouts"]) {
        assert.ok(k in stats.pool, `stats.pool.${k}`);
      }
      assert.equal(typeof stats.clock, "string");
      assert.ok((stats.total as unknown as Record<string, number>)["tasks.add"] >= 1);

      const queues = await ask(["inspect", "active_queues"]) as Record<string, unknown>[];
      const pyQueue = (theirs("inspect_active_queues") as Record<string, unknown>[])[0];
      assert.deepEqual(queues.map((q) => q.name), [queue]);
      assert.deepEqual(keys(queues[0]), keys(pyQueue));
      assert.deepEqual(keys(queues[0].exchange), keys(pyQueue.exchange));

      assert.deepEqual(await ask(["control", "add_consumer", "extra_q"]), {
        ok: "add consumer extra_q",
      });
      const after = await ask(["inspect", "active_queues"]) as { name: string }[];
      assert.deepEqual(after.map((q) => q.name), [queue, "extra_q"]);
      assert.deepEqual(await ask(["control", "cancel_consumer", "extra_q"]), {
        ok: "no longer consuming from extra_q",
      });

      const clock = await ask(["inspect", "clock"]) as { clock: number };
      assert.equal(typeof clock.clock, "number");
      const conf = await ask(["inspect", "conf"]) as Record<string, unknown>;
      assert.match(String(conf.broker_url), new RegExp(`^${transport}://`));
      assert.ok(!String(conf.broker_url).includes(":guest@"), "the password is hidden");
      const report = await ask(["inspect", "report"]) as { ok: string };
      assert.match(report.ok, /software -> celeriac:/);
      assert.ok((await ask(["inspect", "registered"]) as string[]).includes(
        "tasks.add [rate_limit=1/h]",
      ));

      assert.deepEqual(await ask(["control", "enable_events"]), { ok: "task events enabled" });
      assert.deepEqual(await ask(["control", "enable_events"]), {
        ok: "task events already enabled",
      });
      assert.deepEqual(await ask(["control", "disable_events"]), { ok: "task events disabled" });
      assert.deepEqual(
        await ask(["control", "time_limit", "tasks.sleep", "1", "2"]),
        theirs("time_limit"),
      );
      assert.deepEqual(
        await ask(["control", "time_limit", "no.such", "1", "2"]),
        { error: "unknown task" },
      );
      assert.deepEqual(await ask(["control", "revoke", later.id]), {
        ok: `tasks ${later.id} flagged as revoked`,
      });
      assert.deepEqual(await ask(["control", "terminate", "SIGTERM", running.id]), {
        ok: `terminate: ${running.id}`,
      });
    } finally {
      await cli.close();
      await app.close();
      await worker.stop();
    }
  });
}

Deno.test({
  name: "interop inspect: Celeriac's app.control drives a Python worker",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `insp-py-${crypto.randomUUID().slice(0, 8)}`;
  const broker = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const py = await celeryWorker(["-P", "solo", "-Q", queue, "-n", `py-${queue}@%h`], {
    CELERY_BROKER_URL: REDIS_URL,
    CELERY_RESULT_BACKEND: REDIS_URL,
    INTEROP_KEYPREFIX: prefix,
    INTEROP_QUEUE: queue,
  });
  const app = new Celery({ broker, backend: REDIS_URL, defaultQueue: queue });
  try {
    const pongs = await app.control.ping({ timeout: 5 });
    const node = pongs.flatMap(Object.keys).find((n) => n.startsWith(`py-${queue}@`))!;
    assert.ok(node, JSON.stringify(pongs));
    const inspect = app.control.inspect({ timeout: 5, destination: [node] });
    assert.ok((await inspect.registered())[node].includes("py.mul"));
    const stats = (await inspect.stats())[node];
    assert.equal(typeof stats.pid, "number");
    assert.deepEqual((await inspect.active())[node], []);
    assert.deepEqual((await inspect.activeQueues())[node].map((q) => q.name), [queue]);
    assert.deepEqual(
      await app.control.call("enable_events", {}, { timeout: 5, destination: [node] }),
      [{ [node]: { ok: "task events enabled" } }],
    );
  } finally {
    await app.close();
    await py.stop();
  }
});

Deno.test({ name: "interop inspect: clean up", ignore: WITHOUT_CELERY }, async () => {
  await deleteResults(ids);
  await deleteKeys(prefix); // kombu bindings, revoked set, rate-limit state under the test's prefix
  await vhost?.remove();
});
