/**
 * The options of canvas steps a worker sends. A step whose signature asks
 * for msgpack or compression is encoded with them even when the worker has
 * not loaded those codecs yet (it loads them on demand).
 */

import assert from "node:assert/strict";
import { Celery, chain } from "../mod.ts";
import { loadedCompression, loadedMsgpack } from "../src/protocol/codecs.ts";
import { Worker } from "../src/worker/worker.ts";
import { app as annotatedApp } from "./apps/annotated_app.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

// First in this file: nothing in this process has loaded msgpack or compression yet.
Deno.test({
  name:
    "canvas step options: a worker sends msgpack and compressed steps before loading those codecs",
  ignore: WITHOUT_REDIS,
}, async () => {
  assert.throws(() => loadedMsgpack(), /msgpack support is not loaded/);
  assert.throws(() => loadedCompression(), /Compression support is not loaded/);
  const prefix = uniquePrefix("canvas-step-codecs");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `codecs-${crypto.randomUUID().slice(0, 8)}`;
  annotatedApp.configure({ broker: url, backend: url, defaultQueue: queue });
  const worker = new Worker({
    app: annotatedApp,
    appModule: new URL("./apps/annotated_app.ts", import.meta.url).href,
    queues: [queue],
    concurrency: 1,
  });
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  await worker.start();
  try {
    const packed = await chain(
      client.signature("r.add", [1, 2]),
      client.signature("r.add", [3]).set({ serializer: "msgpack" }),
    ).applyAsync();
    assert.equal(await packed.get({ timeout: 10_000 }), 6);
    const zipped = await chain(
      client.signature("r.add", [1, 2]),
      client.signature("r.mul", [3]).set({ compression: "zlib" }),
    ).applyAsync();
    assert.equal(await zipped.get({ timeout: 10_000 }), 9);
  } finally {
    await worker.stop();
    await client.close();
    await annotatedApp.close();
    await deleteKeys(prefix);
  }
});
