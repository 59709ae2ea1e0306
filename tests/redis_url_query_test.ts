import assert from "node:assert/strict";
import { openRedisBackend } from "../src/backend/redis.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { connectRedis, openRedisConnection } from "../src/broker/redis_connection.ts";
import { parseRedisUrl } from "../src/broker/redis_url.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { reservePorts } from "./helpers/ports.ts";
import { SilentServer } from "./helpers/silent_server.ts";

Deno.test({
  name: "redis url: ?db=N wins over the path, as Celery's Redis backend reads it: a result " +
    "stored through redis://…/0?db=5 is in database 5",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("url-db");
  const u = new URL(REDIS_URL);
  u.pathname = "/0";
  u.searchParams.set("db", "5");
  u.searchParams.set("global_keyprefix", prefix);
  const id = crypto.randomUUID();
  const key = `${prefix}celery-task-meta-${id}`;
  const meta = encodeResultMeta({ taskId: id, status: "SUCCESS", result: 7, dateDone: new Date() });
  const at = (db: number) => {
    const raw = new URL(REDIS_URL);
    raw.pathname = `/${db}`;
    raw.search = "";
    return raw.href;
  };
  const db0 = await rawRedis(at(0));
  const db5 = await rawRedis(at(5));
  const backend = await openRedisBackend(u.href);
  try {
    await backend.store([{ taskId: id, status: "SUCCESS", meta }]);
    assert.equal(await db5.get(key), meta, "stored in database 5");
    assert.equal(await db0.get(key), null, "not in the path's database 0");
    assert.equal((await backend.get(id))?.result, 7, "read back from database 5");
  } finally {
    await backend.close();
    await db5.del(key);
    await db0.del(key);
    await db5.quit();
    await db0.quit();
  }
});

Deno.test(
  "redis url: ?socket_connect_timeout=<s> (redis-py's name) bounds a connect to a server " +
    "that accepts and never answers, instead of the 10 s default",
  async () => {
    using ports = reservePorts();
    await using _server = new SilentServer(ports.base);
    const url = `redis://127.0.0.1:${ports.base}/0?socket_connect_timeout=0.3`;
    const client = openRedisConnection(parseRedisUrl(url), url);
    await assert.rejects(
      connectRedis(client, url),
      (e) => e instanceof BrokerConnectionError && /did not answer within 300 ms/.test(e.message),
    );
    const bad = "redis://127.0.0.1/0?socket_connect_timeout=soon";
    assert.throws(
      () => openRedisConnection(parseRedisUrl(bad), bad),
      /Invalid socket_connect_timeout "soon" .*use a positive number of seconds/,
    );
  },
);
