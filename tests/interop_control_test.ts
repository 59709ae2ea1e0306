/**
 * Remote control across languages on Redis, with real Python Celery 5.2.6:
 * `celery inspect ping` / `celery control revoke` / `terminate` reach a
 * Celeriac worker, and Celeriac's `app.control.revoke` reaches a Python worker.
 */

import assert from "node:assert/strict";
import { Celery, TaskError } from "../mod.ts";
import { CeleryCliSession, interopWorker, pythonEnv } from "./helpers/interop.ts";
import { celeryWorker } from "./helpers/procs.ts";
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

function tsWorker(queue: string, hostname: string) {
  return interopWorker({ broker: BROKER, backend: REDIS_URL }, queue, ["-c", "1", "-n", hostname]);
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

Deno.test({ name: "interop control: clean up keys", ignore: WITHOUT_CELERY }, async () => {
  await deleteKeys(prefix);
  await deleteResults(taskIds);
});
