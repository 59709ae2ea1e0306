/**
 * A client applies canvases whose steps need msgpack or compression only
 * through their task's options or a route (not the signature's own options)
 * before it has loaded those codecs: it loads them on demand, as for a
 * direct call. This file has one test so that nothing in its process has
 * loaded a codec before it runs.
 */

import assert from "node:assert/strict";
import { Celery, chain, group } from "../mod.ts";
import { type Message, PUBLISHER } from "../protocol.ts";
import { loadedCompression, loadedMsgpack } from "../src/protocol/codecs.ts";

Deno.test("canvas client codecs: a task's serializer and a route's compression load their codecs before the steps are encoded", async () => {
  assert.throws(() => loadedMsgpack(), /msgpack support is not loaded/);
  assert.throws(() => loadedCompression(), /Compression support is not loaded/);
  const app = new Celery({
    broker: "kv://:memory:",
    backend: null,
    taskRoutes: { "z.*": { compression: "zlib" } },
  });
  const sent: Message[] = [];
  app[PUBLISHER] = (message) => {
    sent.push(message);
    return Promise.resolve();
  };
  const packed = app.task("t.packed", { serializer: "msgpack" }, (a: number) => a);
  const zipped = app.task("z.zipped", (a: number) => a);
  await chain(packed.s(1), packed.s(2)).applyAsync();
  await group([zipped.s(3), zipped.s(4)]).applyAsync();
  const seen = sent.map((m) => [m.headers.task, m.contentType, m.headers.compression ?? null]);
  assert.deepEqual(seen, [
    ["t.packed", "application/x-msgpack", null],
    ["z.zipped", "application/json", "application/x-gzip"],
    ["z.zipped", "application/json", "application/x-gzip"],
  ]);
  await app.close();
});
