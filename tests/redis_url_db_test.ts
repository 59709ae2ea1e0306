import assert from "node:assert/strict";
import { openRedisBackend } from "../src/backend/redis.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

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
