/**
 * A Python Celery worker and a Celeriac worker sharing a Redis queue take
 * turns: tasks sent one at a time go to both (Celeriac waits by claiming a
 * message in its turn, as BRPOP does, not by peeking at the list).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { interopWorker } from "./helpers/interop.ts";
import { celeryWorker } from "./helpers/procs.ts";
import { deleteKeys, deleteResults, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const prefix = uniquePrefix("fair");
const BROKER = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

Deno.test({
  name: "interop fair share: 40 tasks sent one at a time go to both workers",
  ignore: WITHOUT_CELERY,
}, async () => {
  const queue = `q-fair-${crypto.randomUUID().slice(0, 8)}`;
  const marker = `${prefix}marker-fair`;
  const py = await celeryWorker(["-P", "solo", "-Q", queue], {
    CELERY_BROKER_URL: REDIS_URL,
    CELERY_RESULT_BACKEND: REDIS_URL,
    INTEROP_KEYPREFIX: prefix,
    INTEROP_QUEUE: queue,
    INTEROP_MARKER_REDIS: REDIS_URL,
  });
  const ts = await interopWorker({ broker: BROKER, backend: REDIS_URL }, queue, ["-c", "1"]);
  const app = new Celery({ broker: BROKER, backend: REDIS_URL, defaultQueue: queue });
  const ids: string[] = [];
  try {
    // Both workers block on the queue before the first task is sent.
    await new Promise((r) => setTimeout(r, 1500));
    const ran: string[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await app.sendTask<string>("tasks.record", [i, marker]);
      ids.push(r.id);
      ran.push(await r.get({ timeout: 20_000 }));
    }
    const python = ran.filter((s) => s.startsWith("py:")).length;
    const celeriac = ran.filter((s) => s.startsWith("ts:")).length;
    // Peeking gave Python all 40; taking turns gives about 20 / 20.
    assert.ok(python >= 10 && celeriac >= 10, `python ${python}, celeriac ${celeriac}`);
  } finally {
    await app.close();
    await Promise.all([py.stop(), ts.stop()]);
    await deleteResults(ids);
    const r = await rawRedis();
    await r.del(marker);
    await r.quit();
    await deleteKeys(prefix);
  }
});
