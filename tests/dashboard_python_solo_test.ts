/**
 * The dashboard's task detail of a task that failed on a Python Celery
 * 5.2.6 worker sending events (`-E`), over HTTP (`/api/tasks/<id>`): the
 * exception is the task's own repr (`ValueError('…')`), whichever pool ran
 * it, and the traceback is Python's.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { startDashboard } from "./helpers/dashboard.ts";
import { celeryWorker, type Proc } from "./helpers/procs.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";
import { until } from "./helpers/waits.ts";

const prefix = uniquePrefix("dash-solo");
const broker = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

for (const pool of ["solo", "prefork"]) {
  Deno.test({
    name: `dashboard: a task that failed on a Python ${pool} worker shows its own exception`,
    ignore: WITHOUT_CELERY,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const queue = `dash-${pool}-${crypto.randomUUID().slice(0, 6)}`;
      const app = new Celery({ broker, backend: REDIS_URL });
      const procs: Proc[] = [];
      const ids: string[] = [];
      try {
        procs.push(
          await celeryWorker(["-P", pool, "-c", "1", "-Q", queue, "-n", `${queue}@%h`, "-E"], {
            CELERY_BROKER_URL: REDIS_URL,
            CELERY_RESULT_BACKEND: REDIS_URL,
            INTEROP_KEYPREFIX: prefix,
            INTEROP_QUEUE: queue,
          }),
        );
        const { proc, url } = await startDashboard({ broker, backend: REDIS_URL });
        procs.push(proc);
        const headers = { authorization: `Basic ${btoa("admin:s3cret")}` };
        // Events sent before the dashboard subscribed are lost: its first heartbeat is awaited.
        await until(`the dashboard's ${queue} worker`, async () => {
          const res = await fetch(`${url}/api/workers`, { headers });
          const body = await res.json().catch(() => null);
          return (body?.workers ?? []).some((w: { hostname: string }) =>
            w.hostname.startsWith(`${queue}@`)
          );
        });
        // A one-argument exception, and one with two (its str() is the tuple of them).
        const calls = [
          { name: "py.fail", args: ["solo-boom"], repr: "ValueError('solo-boom')" },
          { name: "py.custom_fail", args: [], repr: "CustomError('custom', 42)" },
        ];
        for (const c of calls) {
          const r = await app.sendTask(c.name, c.args, { queue });
          ids.push(r.id);
          await assert.rejects(r.get({ timeout: 30_000 }));
          let task: Record<string, unknown> = {};
          await until(`the dashboard's FAILURE of ${r.id}`, async () => {
            const res = await fetch(`${url}/api/tasks/${r.id}`, { headers });
            const body = await res.json().catch(() => null);
            task = body?.task ?? {};
            return task.state === "FAILURE";
          });
          assert.equal(task.exception, c.repr, `${c.name} on ${pool}`);
          assert.match(String(task.traceback), /Error: /);
        }
      } finally {
        for (const p of procs.reverse()) await p.stop();
        await app.close();
        await deleteResults(ids);
      }
    },
  });
}

Deno.test({ name: "dashboard python solo: clean up", ignore: WITHOUT_CELERY }, async () => {
  await deleteKeys(prefix);
});
