/**
 * The prefetch bounds a late-ack worker's unacknowledged messages, as in
 * Celery/kombu: a task that ended but whose settlement (result store, then
 * acknowledgement) is under way keeps its take slot until the settlement
 * ends, however prompt. The result backend is a private redis-server behind
 * a proxy that delays each request 30 ms; the broker's `unacked` hash is
 * sampled while a -c 1 --prefetch 4 worker drains late-ack tasks.
 */

import assert from "node:assert/strict";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { withWorker } from "./helpers/worker.ts";

const TASKS = 200;
const PREFETCH = 4;

Deno.test({
  name: "late ack, backend answering in 30 ms: unacknowledged messages stay within the prefetch",
  ignore: WITHOUT_REDIS,
}, async () => {
  const backend = await PrivateRedis.start();
  const proxy = TcpProxy.start({ hostname: "127.0.0.1", port: backend.port }, { delayMs: 30 });
  const prefix = uniquePrefix("late-ack-prefetch");
  const raw = await rawRedis();
  let most = 0;
  try {
    await withWorker(
      {
        broker: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`,
        backend: `redis://127.0.0.1:${proxy.port}/0`,
      },
      { concurrency: 1, prefetch: PREFETCH },
      async (client, worker) => {
        for (let i = 0; i < TASKS; i++) await client.sendTask("t.slow_late", [0]);
        const end = Date.now() + 60_000;
        while (worker.stats.succeeded < TASKS) {
          if (Date.now() > end) throw new Error(`${worker.stats.succeeded}/${TASKS} tasks done`);
          most = Math.max(most, Number(await raw.hlen(`${prefix}unacked`)));
          await new Promise((r) => setTimeout(r, 2));
        }
      },
    );
    assert.ok(most >= 1, "sampled no unacknowledged message");
    assert.ok(most <= PREFETCH, `${most} messages unacknowledged at once, prefetch ${PREFETCH}`);
  } finally {
    raw.disconnect();
    await deleteKeys(prefix);
    await proxy.close();
    await backend.close();
  }
});
