/**
 * A warm shutdown while the broker is gone (its own redis-server, killed)
 * ends once the running task is done, as a Celery worker's does: it does not
 * wait out `outageRetryLimit` (300 s) to store the result and acknowledge.
 * The message of a task acknowledged late stays unacknowledged in Redis, for
 * redelivery.
 */

import assert from "node:assert/strict";
import { app as tasksApp } from "./apps/worker_app.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { rawRedis } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { withWorker } from "./helpers/worker.ts";

/** Well below the outage limit, well above a 1 s task. */
const PROMPT_MS = 15_000;

Deno.test({
  name: "warm shutdown while Redis is down: stop() ends after the running task, " +
    "leaving its message unacknowledged",
  ignore: WITHOUT_REDIS,
}, async () => {
  const server = await PrivateRedis.start();
  // Below the default 300 s, so that the test fails in a minute where stop() waits it out;
  // put back after, as the app is shared by the other tests of the process.
  const limit = tasksApp.config.outageRetryLimit;
  tasksApp.configure({ outageRetryLimit: 60 });
  try {
    let stopMs = 0;
    await withWorker({ broker: server.url, backend: server.url }, {}, async (client, worker) => {
      // Acknowledged late, so that the message is still unacknowledged when the task ends.
      await client.sendTask("t.slow_late", [1000]);
      // Received is not yet recorded: a take writes its record after handing the message out,
      // and a kill before that leaves it in the claim list (returned after the claim lease).
      const redis = await rawRedis(server.url);
      try {
        while (await redis.hlen("unacked") === 0) await new Promise((ok) => setTimeout(ok, 20));
      } finally {
        await redis.quit();
      }
      await server.down();
      const t0 = Date.now();
      // Before: stop() waited for the result store to get through, up to outageRetryLimit.
      await worker.stop();
      stopMs = Date.now() - t0;
      assert.equal(worker.stats.succeeded, 1, "the running task finished");
    });
    assert.ok(stopMs < PROMPT_MS, `stop() took ${stopMs} ms`);
    await server.up();
    const redis = await rawRedis(server.url);
    try {
      assert.equal(await redis.hlen("unacked"), 1, "the message waits for redelivery");
    } finally {
      await redis.quit();
    }
  } finally {
    tasksApp.configure({ outageRetryLimit: limit });
    await server.close();
  }
});
