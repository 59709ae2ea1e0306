/**
 * With early acknowledgement (the default), a task that ends in a failure
 * the worker writes itself (its Web Worker died: `WorkerLostError`) while
 * the result backend (its own redis-server, killed) is down still holds its
 * prefetch slot until that result is stored: the worker takes no more
 * messages than its prefetch beyond those it had, instead of holding an
 * unbounded number of unstored results in memory, and every result is
 * stored once the backend is back.
 */

import assert from "node:assert/strict";
import type { AsyncResult } from "../src/client/async_result.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";
import { withWorker } from "./helpers/worker.ts";

const TASKS = 60;
/** Taken beyond those held when the backend went down: prefetch 4, with slack. */
const MOST_TAKEN = 10;

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const cases = [
  {
    name: "redis",
    ignore: WITHOUT_REDIS,
    broker: () => {
      const prefix = uniquePrefix("backend-down-early");
      return Promise.resolve({
        url: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`,
        cleanup: () => deleteKeys(prefix).then(),
      });
    },
  },
  {
    name: "rabbitmq",
    ignore: WITHOUT_REDIS || WITHOUT_RABBITMQ,
    broker: async () => {
      const vhost = await createVhost("backend-down-early");
      return { url: vhost.url(), cleanup: () => vhost.remove() };
    },
  },
];

for (const c of cases) {
  Deno.test({
    name:
      `${c.name} broker, early ack, result backend down: lost Web Workers' failures keep their slots`,
    ignore: c.ignore,
  }, async () => {
    const backend = await PrivateRedis.start();
    const broker = await c.broker();
    try {
      await withWorker({ broker: broker.url, backend: backend.url }, {}, async (client, worker) => {
        const sent: AsyncResult[] = [];
        // Each kills its Web Worker (an unhandled error there): failed with WorkerLostError.
        for (let i = 0; i < TASKS; i++) sent.push(await client.sendTask("t.crash", []));
        await until("two tasks failed", () => worker.stats.failed >= 2);
        await backend.down();
        const atKill = worker.stats.received;
        await new Promise((r) => setTimeout(r, 5000));
        const taken = worker.stats.received - atKill;
        assert.ok(taken <= MOST_TAKEN, `${taken} taken while the results could not be stored`);
        await backend.up();
        await until("every task failed", () => worker.stats.failed >= TASKS, 90_000);
        await until("every result stored", async () => {
          const states = await Promise.all(sent.map((r) => r.state().catch(() => "PENDING")));
          return states.every((s) => s === "FAILURE");
        });
        assert.equal(worker.stats.received, TASKS, "each message received once");
      });
    } finally {
      await broker.cleanup();
      await backend.close();
    }
  });
}
