/**
 * A Redis restarted with a dataset to load answers `-LOADING` to commands
 * until the load ends: an LPUSH so answered did not run, so a `sendMany()`
 * batch that met only such replies went nowhere and is tried again, as a
 * batch refused while the server was down (tests/publish_retry_test.ts).
 * The server is the test's own redis-server, loading its keys slowly.
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Celery } from "../mod.ts";
import { reservePorts } from "./helpers/ports.ts";
import { redisServerProc } from "./helpers/procs.ts";
import { rawRedis } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/** The reply (or error message) of PING from a client that does not wait for the load. */
async function ping(port: number): Promise<string> {
  const r = new Redis({
    port,
    host: "127.0.0.1",
    lazyConnect: true,
    enableReadyCheck: false,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  r.on("error", () => {});
  try {
    await r.connect();
    return await r.ping();
  } catch (err) {
    return (err as Error).message;
  } finally {
    r.disconnect();
  }
}

Deno.test({
  name: "publish loading: a sendMany() batch met by -LOADING replies is tried again",
  ignore: WITHOUT_REDIS,
}, async () => {
  using ports = reservePorts();
  const dir = await Deno.makeTempDir({ prefix: "celeriac-loading-" });
  const args = ["--bind", "127.0.0.1", "--dir", dir, "--enable-debug-command", "yes"];
  let server = redisServerProc(ports.base, args);
  const url = `redis://127.0.0.1:${ports.base}/0`;
  const app = new Celery({
    broker: url,
    backend: null,
    defaultQueue: "loading",
    taskPublishRetryPolicy: { maxRetries: 50 },
  });
  try {
    await server.waitFor(/Ready to accept connections/);
    const redis = await rawRedis(url);
    try {
      await redis.call("DEBUG", "POPULATE", "3000");
      await redis.call("SAVE");
    } finally {
      await redis.quit();
    }
    await app.sendTask("t.add", [1, 1]);
    await server.stop("SIGKILL");
    // 3000 keys at 1 ms each, and clients answered between keys: LOADING for about 3 s.
    server = redisServerProc(ports.base, [
      ...args,
      "--key-load-delay",
      "1000",
      "--loading-process-events-interval-bytes",
      "1024",
    ]);
    await server.waitFor(/Loading RDB/);
    for (;;) {
      const reply = await ping(ports.base);
      if (/^LOADING/.test(reply)) break;
      assert.doesNotMatch(
        reply,
        /^PONG$/,
        "the server loaded its keys before the test saw LOADING",
      );
      await new Promise((ok) => setTimeout(ok, 20));
    }
    // Before: BatchSendError "0 sent, 0 not sent" (every message unknown), not retried.
    const sent = await app.sendMany([{ name: "t.add", args: [1, 2] }, {
      name: "t.add",
      args: [3, 4],
    }]);
    assert.equal(sent.length, 2);
    const check = await rawRedis(url);
    try {
      assert.equal(await check.llen("loading"), 2);
    } finally {
      await check.quit();
    }
  } finally {
    await app.close();
    await server.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
