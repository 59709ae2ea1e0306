/**
 * Remote control across languages on Redis, with real Python Celery 5.2.6:
 * `celery inspect ping` / `celery control revoke` / `terminate` reach a
 * Celeriac worker, and Celeriac's `app.control.revoke` reaches a Python worker.
 */

import assert from "node:assert/strict";
import { Celery, TaskError } from "../mod.ts";
import { celeriacWorker, celeryWorker, PYTHON } from "./helpers/procs.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const prefix = uniquePrefix("interop-ctl");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

function pyEnv(queue: string): Record<string, string> {
  return {
    CELERY_BROKER_URL: REDIS_URL,
    CELERY_RESULT_BACKEND: REDIS_URL,
    INTEROP_KEYPREFIX: prefix,
    INTEROP_QUEUE: queue,
    INTEROP_MARKER_REDIS: REDIS_URL,
    PYTHONPATH: `${ROOT}tests/interop`,
  };
}

/** Run `celery -A pytasks <args>` and return its output. */
async function celeryCli(queue: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(PYTHON, {
    args: ["-m", "celery", "-A", "pytasks", ...args],
    cwd: `${ROOT}tests/interop`,
    env: pyEnv(queue),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return dec.decode(out.stdout) + dec.decode(out.stderr);
}

async function tsWorker(queue: string, hostname: string) {
  return await celeriacWorker([
    "--app",
    "./tests/interop/tasks.ts",
    "--broker",
    BROKER,
    "--backend",
    REDIS_URL,
    "-Q",
    queue,
    "-c",
    "1",
    "-n",
    hostname,
    "--loglevel",
    "INFO",
  ]);
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
  try {
    const ping = await celeryCli(queue, ["inspect", "ping", "-d", node, "-t", "5"]);
    assert.match(ping, new RegExp(`${node}: OK\\s+pong`));

    const held = await app.sendTask<number>("tasks.add", [1, 2], { countdown: 60 });
    await worker.waitFor(new RegExp(`tasks\\.add\\[${held.id}\\] received, ETA`));
    const revoke = await celeryCli(queue, ["control", "revoke", held.id, "-t", "5"]);
    assert.match(revoke, new RegExp(`${node}: OK\\s+tasks ${held.id} flagged as revoked`));
    assert.deepEqual(await revokedReason(app, held.id), ["revoked"]);

    const running = await app.sendTask<string>("tasks.sleep", [60]);
    await worker.waitFor(new RegExp(`tasks\\.sleep\\[${running.id}\\] received`));
    const kill = await celeryCli(queue, ["control", "terminate", "SIGTERM", running.id, "-t", "5"]);
    assert.match(kill, new RegExp(`${node}: OK\\s+terminate: ${running.id}`));
    assert.deepEqual(await revokedReason(app, running.id), ["terminated"]);
  } finally {
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

Deno.test({ name: "interop control: clean up keys", ignore: WITHOUT_CELERY }, async () => {
  await deleteKeys(prefix);
  await deleteResults(taskIds);
});
