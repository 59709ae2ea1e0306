/**
 * Remote control across languages on Redis, with real Python Celery 5.2.6:
 * `celery inspect ping` / `celery control revoke` / `terminate` reach a
 * Celeriac worker, and Celeriac's `app.control.revoke` reaches a Python worker.
 */

import assert from "node:assert/strict";
import { Celery, TaskError } from "../mod.ts";
import { CeleryCliSession, interopWorker, pythonEnv } from "./helpers/interop.ts";
import { celeryWorker, runCli } from "./helpers/procs.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const prefix = uniquePrefix("interop-ctl");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

function pyEnv(queue: string): Record<string, string> {
  return pythonEnv({ broker: REDIS_URL, backend: REDIS_URL }, queue, prefix);
}

/** Run `celery -A pytasks <args>` and return its output. */
async function celery(cli: CeleryCliSession, args: string[]): Promise<string> {
  const out = await cli.run(args);
  return out.stdout + out.stderr;
}

function tsWorker(queue: string, hostname: string, ...args: string[]) {
  const worker = ["-c", "1", "-n", hostname, ...args];
  return interopWorker({ broker: BROKER, backend: REDIS_URL }, queue, worker);
}

/** Ids of tasks whose results sit in Redis, deleted at the end. */
const taskIds: string[] = [];

async function revokedReason(app: Celery, id: string): Promise<unknown[]> {
  taskIds.push(id);
  const err = await app.asyncResult(id).get({ timeout: 15_000 }).then(() => null, (e) => e);
  assert.ok(err instanceof TaskError, `expected a TaskError, got ${err}`);
  assert.equal(err.excType, "TaskRevokedError");
  assert.equal(await app.asyncResult(id).state(), "REVOKED");
  return err.excMessage;
}

Deno.test({
  name: "interop control: celery inspect ping and control revoke reach a Celeriac worker",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-ctl-${crypto.randomUUID().slice(0, 8)}`;
  const node = `celeriac-${queue}@interop`;
  const worker = await tsWorker(queue, node);
  const app = new Celery({ broker: BROKER, backend: REDIS_URL, defaultQueue: queue });
  // The commands below run Python's `celery` entry point in this one Python process.
  const cli = new CeleryCliSession(pyEnv(queue));
  try {
    const ping = await celery(cli, ["inspect", "ping", "-d", node, "-t", "5"]);
    assert.match(ping, new RegExp(`${node}: OK\\s+pong`));

    const held = await app.sendTask<number>("tasks.add", [1, 2], { countdown: 60 });
    await worker.waitFor(new RegExp(`tasks\\.add\\[${held.id}\\] received, ETA`));
    const revoke = await celery(cli, ["control", "revoke", held.id, "-t", "5"]);
    assert.match(revoke, new RegExp(`${node}: OK\\s+tasks ${held.id} flagged as revoked`));
    assert.deepEqual(await revokedReason(app, held.id), ["revoked"]);

    const running = await app.sendTask<string>("tasks.sleep", [60]);
    await worker.waitFor(new RegExp(`tasks\\.sleep\\[${running.id}\\] received`));
    const kill = await celery(cli, ["control", "terminate", "SIGTERM", running.id, "-t", "5"]);
    assert.match(kill, new RegExp(`${node}: OK\\s+terminate: ${running.id}`));
    assert.deepEqual(await revokedReason(app, running.id), ["terminated"]);
  } finally {
    await cli.close();
    await app.close();
    await worker.stop();
  }
});

Deno.test({
  name: "interop control: app.control.revoke reaches a Python worker holding an ETA task",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-ctl-py-${crypto.randomUUID().slice(0, 8)}`;
  const py = await celeryWorker(["-P", "solo", "-Q", queue], pyEnv(queue));
  const app = new Celery({ broker: BROKER, backend: REDIS_URL, defaultQueue: queue });
  try {
    const held = await app.sendTask<number>("py.mul", [1, 2], { countdown: 3 });
    await py.waitFor(new RegExp(`Task py\\.mul\\[${held.id}\\] received`));
    await app.control.revoke(held.id);
    assert.deepEqual(await revokedReason(app, held.id), ["revoked"]);
    const next = await app.sendTask<number>("py.mul", [2, 2]);
    taskIds.push(next.id);
    assert.equal(await next.get({ timeout: 15_000 }), 4, "the Python worker carries on");
  } finally {
    await app.close();
    await py.stop();
  }
});

Deno.test({
  name: "interop control: inspect registered ITEMS shows the time limits set, on both workers",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-ctl-reg-${crypto.randomUUID().slice(0, 8)}`;
  const node = `celeriac-${queue}@interop`;
  const pyNode = `py-${queue}@interop`;
  // Celery's --time-limit / --soft-time-limit are floats: its stats show [20.0, 30.0].
  const worker = await tsWorker(queue, node, "--time-limit", "30", "--soft-time-limit", "20");
  const py = await celeryWorker(["-P", "solo", "-Q", queue, "-n", pyNode], pyEnv(queue));
  const cli = new CeleryCliSession(pyEnv(queue));
  const ours = (args: string[]) => runCli([...args, "-b", BROKER, "-t", "5"]);
  try {
    // Each CLI sets the other's worker: both send, and both workers show, floats.
    const set = await ours(["control", "time_limit", "py.mul", "10", "20", "-d", pyNode]);
    assert.equal(set.code, 0, set.stdout + set.stderr);
    await celery(cli, ["control", "time_limit", "tasks.sleep", "1", "2", "-d", node, "-t", "5"]);
    const stats = await celery(cli, ["inspect", "stats", "--json", "-d", node, "-t", "5"]);
    assert.match(stats, /"timeouts": \[20\.0, 30\.0\]/);
    // Our CLI prints them as Celery's does (it printed [20, 30]).
    const ourStats = await ours(["inspect", "stats", "--json", "-d", node]);
    assert.match(ourStats.stdout, /"timeouts":\[20\.0,30\.0\]/, ourStats.stdout + ourStats.stderr);
    // Celery's CLI asks a Celeriac worker for the items named, and it answers with them.
    const theirs = await celery(cli, [
      "inspect",
      "registered",
      "time_limit",
      "soft_time_limit",
      "-d",
      `${node},${pyNode}`,
      "-t",
      "5",
    ]);
    assert.match(theirs, /\* tasks\.sleep \[time_limit=2\.0 soft_time_limit=1\.0\]/);
    assert.match(theirs, /\* py\.mul \[time_limit=20\.0 soft_time_limit=10\.0\]/);
    assert.match(theirs, /\* tasks\.add\n/, "a task without the items asked shows none");
    // Celeriac's CLI sends the items: the Python worker answers with its time limit too.
    const mine = await ours(["inspect", "registered", "time_limit", "-d", `${node},${pyNode}`]);
    assert.equal(mine.code, 0, mine.stdout + mine.stderr);
    assert.match(mine.stdout, /\* tasks\.sleep \[time_limit=2\.0\]/);
    assert.match(mine.stdout, /\* py\.mul \[time_limit=20\.0\]/);
    // None asked: Celery's default items (exchange, routing_key, rate_limit), so no time limit.
    const plain = await ours(["inspect", "registered", "-d", node]);
    assert.match(plain.stdout, /\* tasks\.sleep\n/);
  } finally {
    await cli.close();
    await py.stop();
    await worker.stop();
  }
});

Deno.test({
  name: "interop control: control --json prints Celery's list of one-node replies",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-ctl-json-${crypto.randomUUID().slice(0, 8)}`;
  const node = `celeriac-${queue}@interop`;
  const worker = await tsWorker(queue, node);
  const cli = new CeleryCliSession(pyEnv(queue));
  try {
    for (const command of ["enable_events", "heartbeat"]) {
      const args = ["control", command, "--json", "-d", node, "-t", "5"];
      const theirs = JSON.parse(await celery(cli, args));
      const mine = await runCli([...args, "-b", BROKER]);
      assert.equal(mine.code, 0, mine.stdout + mine.stderr);
      assert.ok(Array.isArray(theirs), `celery control ${command} --json: ${theirs}`);
      // The same shape (enable_events answers "already enabled" the second time).
      // heartbeat's reply is null, from either worker.
      const shape = (list: Record<string, Record<string, unknown> | null>[]) =>
        list.map((r) =>
          Object.entries(r).map(([n, reply]) => [n, reply === null ? null : Object.keys(reply)])
        );
      assert.deepEqual(shape(JSON.parse(mine.stdout)), shape(theirs));
      assert.deepEqual(
        shape(theirs),
        [[[node, command === "heartbeat" ? null : ["ok"]]]],
        JSON.stringify(theirs),
      );
    }
  } finally {
    await cli.close();
    await worker.stop();
  }
});

Deno.test({ name: "interop control: clean up keys", ignore: WITHOUT_CELERY }, async () => {
  await deleteKeys(prefix);
  await deleteResults(taskIds);
});
