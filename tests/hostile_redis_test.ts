/**
 * Hostile list elements on the Redis transport: one that names its task is
 * handed to the worker (which runs the task, or stores its FAILURE) rather
 * than parked where nobody waiting on the result hears of it; one the take
 * script parks goes back to its own queue on `parked --requeue`.
 */

import assert from "node:assert/strict";
import { openRedisBroker } from "../src/broker/redis.ts";
import { PARKED_KEY } from "../src/broker/redis_keys.ts";
import { encodeEnvelope } from "../src/protocol/envelope.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name:
    "redis hostile: an envelope without a delivery_tag, or with one that is not a string, is taken under a fresh tag",
  ignore: WITHOUT_REDIS,
}, async () => {
  const own = uniquePrefix("hostile-tag");
  const broker = await openRedisBroker(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(own)}`);
  const r = await rawRedis();
  try {
    const q = uniqueQueue("hostile-tag");
    const sent = ["no tag", "number", "null", "valid"].map((text) => message(text));
    const raws = sent.map((m) => encodeEnvelope(m, { exchange: "", routing_key: q }, "tag-x"));
    const edit = (raw: string, tag: string | null) => {
      const env = JSON.parse(raw);
      if (tag === null) delete env.properties.delivery_tag;
      else env.properties.delivery_tag = JSON.parse(tag);
      return JSON.stringify(env);
    };
    await r.lpush(`${own}${q}`, edit(raws[0], null), edit(raws[1], "5"), edit(raws[2], "null"));
    await r.lpush(`${own}${q}`, raws[3]);
    const got = await broker.take([q], { max: 4 });
    assert.deepEqual(got.map((d) => d.headers.id), sent.map((m) => m.headers.id));
    for (const d of got.slice(0, 3)) {
      assert.ok(d.deliveryTag.startsWith("celeriac-retag-"), d.deliveryTag);
    }
    assert.equal(got[3].deliveryTag, "tag-x");
    assert.equal(await r.llen(`${own}${PARKED_KEY}`), 0, "parked: nobody waiting hears of it");
    await broker.ack(got);
    assert.equal(await r.hlen(`${own}unacked`), 0);
  } finally {
    await broker.close();
    await r.quit();
    await deleteKeys(own);
  }
});

Deno.test({
  name:
    "redis hostile: an element the take script parks is listed and requeued under its queue, with a key prefix too",
  ignore: WITHOUT_REDIS,
}, async () => {
  const own = uniquePrefix("hostile-park");
  const broker = await openRedisBroker(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(own)}`);
  const r = await rawRedis();
  try {
    const q = uniqueQueue("hostile-park");
    const m = message("no properties");
    const env = JSON.parse(encodeEnvelope(m, { exchange: "", routing_key: q }, "tag-p"));
    delete env.properties;
    env.body = JSON.stringify("no properties");
    await r.lpush(`${own}${q}`, JSON.stringify(env));
    assert.deepEqual(
      await broker.take([q], { max: 1, signal: AbortSignal.timeout(500) }),
      [],
      "parked by the take script",
    );
    const [parked] = await broker.listParked();
    assert.equal(parked.queue, q, "the queue, not the prefixed list the script read");
    assert.equal(await broker.requeueParked(), 1);
    // Before: requeued into `${own}${own}${q}`, a list nobody consumes.
    const back = await broker.take([q], { max: 1, signal: AbortSignal.timeout(2000) });
    assert.deepEqual(back.map((d) => d.headers.id), [m.headers.id], "back in its queue");
    await broker.ack(back);
  } finally {
    await broker.close();
    await r.quit();
    await deleteKeys(own);
  }
});
