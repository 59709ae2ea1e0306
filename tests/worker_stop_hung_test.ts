/**
 * A worker's warm shutdown against a Redis that stopped answering over
 * connections that stay up (a hung server, a network that drops replies):
 * `worker.stop()` and `app.close()` end (the settling fails once the reply
 * timeout and the outage limit passed; events and closes are waited for a
 * bounded time). The proxy drops the replies only, so the server ran what
 * was sent: the result is stored and the message settled, nothing is lost
 * (were the acknowledgement not run, the message would stay in `unacked`
 * for the visibility timeout, as redis_close_silent_test.ts checks).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { settlesWithin } from "./helpers/settles.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name: "worker.stop() against a Redis that stopped answering ends; what it sent was run",
  ignore: WITHOUT_REDIS,
  // What was left unanswered is dropped with the connections.
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const prefix = uniquePrefix("stop-hung");
  const query = `?global_keyprefix=${encodeURIComponent(prefix)}`;
  const { proxy, url } = LossyProxy.before(`${REDIS_URL}${query}&socket_timeout=3`);
  const app = new Celery({ broker: url, backend: url, outageRetryLimit: 2 });
  const release = Promise.withResolvers<void>();
  const started = Promise.withResolvers<void>();
  app.task("hung.t", async () => {
    started.resolve();
    await release.promise;
    return 1;
  });
  const worker = new Worker({ app, pool: "inline", queues: ["hq"] });
  const r = await rawRedis();
  const sender = new Celery({ broker: `${REDIS_URL}${query}`, backend: null });
  try {
    await worker.start();
    const id = crypto.randomUUID();
    await sender.sendTask("hung.t", [], { queue: "hq", taskId: id });
    await started.promise;
    proxy.holdReplies();
    release.resolve();
    // The reply timeout (socket_timeout, 3 s here) and the outage limit (2 s) bound the
    // settling; the rest is waited for 2 s a step. Before, stop() waited for the take record
    // until the broker closed, which app.close() does after it.
    assert.ok(await settlesWithin(worker.stop(), 120_000), "worker.stop() still waiting");
    assert.ok(await settlesWithin(app.close(), 30_000), "app.close() still waiting");
    proxy.cut();
    const meta = JSON.parse(await r.get(`${prefix}celery-task-meta-${id}`) ?? "null");
    assert.equal(meta?.status, "SUCCESS", "the result store ran");
    assert.equal(await r.hlen(`${prefix}unacked`), 0, "the acknowledgement ran");
    assert.equal(await r.llen(`${prefix}hq`), 0);
  } finally {
    proxy.close();
    await r.quit();
    await sender.close();
    await deleteKeys(prefix);
  }
});
