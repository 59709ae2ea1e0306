/**
 * A task message from a producer that is not Celery may carry no content
 * type (a bare AMQP publish, a hand-written Redis envelope): the refusal says
 * so and what to set, instead of "Refusing to deserialize content of type
 * (task ...)", and it is the same on Redis and RabbitMQ.
 */

import assert from "node:assert/strict";
import { TaskError } from "../mod.ts";
import {
  ContentDisallowedError,
  decodeEnvelope,
  decodeTaskBody,
  deserialize,
} from "../protocol.ts";
import { fromIncoming } from "../src/broker/amqp_message.ts";
import { PARKED_KEY } from "../src/broker/redis_keys.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { withWorker } from "./helpers/worker.ts";

const body = new TextEncoder().encode("[[], {}, {}]");

Deno.test("hostile content type: a message without one is refused with a message that names what to set", () => {
  assert.throws(() => deserialize(body, "", "utf-8", "t-1"), (err: unknown) => {
    assert.ok(err instanceof ContentDisallowedError);
    assert.equal(err.contentType, "");
    // Before: "Refusing to deserialize content of type  (task t-1): ...".
    assert.match(
      err.message,
      /^Refusing to deserialize a message without a content type \(task t-1\)/,
    );
    assert.match(err.message, /content_type "application\/json"/);
    return true;
  });
});

Deno.test("hostile content type: an unknown one is still named", () => {
  assert.throws(() => deserialize(body, "text/x-weird", "utf-8", "t-2"), (err: unknown) => {
    assert.ok(err instanceof ContentDisallowedError);
    assert.match(
      err.message,
      /^Refusing to deserialize content of type text\/x-weird \(task t-2\)/,
    );
    return true;
  });
});

Deno.test("hostile content type: a Redis envelope and an AMQP delivery without one decode alike", () => {
  const { message } = fromIncoming({
    content: body,
    fields: { deliveryTag: 1, redelivered: false, exchange: "", routingKey: "celery" },
    properties: { headers: { task: "t.add", id: "t-3" } },
  });
  const env = decodeEnvelope(JSON.stringify(noContentTypeEnvelope("t-3", "celery")));
  // Before: the Redis envelope said "application/json" and its body ran as a task.
  assert.equal(env.contentType, "");
  assert.equal(env.contentType, message.contentType);
  for (const m of [env, message]) {
    assert.throws(() => decodeTaskBody(m, "t-3"), ContentDisallowedError);
  }
});

Deno.test({
  name: "hostile content type: a Redis worker parks a task without one and stores the refusal",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("no-ctype");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const redis = await rawRedis();
  try {
    await withWorker({ broker: url, backend: url }, {}, async (client, _worker, queue) => {
      const id = crypto.randomUUID();
      await redis.lpush(`${prefix}${queue}`, JSON.stringify(noContentTypeEnvelope(id, queue)));
      // As Celery 5.2 (which fails to unpack the body as raw data), the body is not read as JSON.
      await assert.rejects(client.asyncResult(id).get({ timeout: 10_000 }), (err: unknown) => {
        assert.ok(err instanceof TaskError);
        assert.equal(err.excType, "ContentDisallowed");
        return true;
      });
      assert.equal(await redis.llen(`${prefix}${PARKED_KEY}`), 1);
    });
  } finally {
    await redis.quit();
    await deleteKeys(prefix);
  }
});

/** A kombu Redis envelope of a `t.add(2, 3)` task with no `content-type` (as a bare producer writes). */
function noContentTypeEnvelope(id: string, queue: string): Record<string, unknown> {
  return {
    body: new TextEncoder().encode("[[2, 3], {}, {}]").toBase64(),
    "content-encoding": "utf-8",
    headers: { task: "t.add", id },
    properties: {
      delivery_tag: crypto.randomUUID(),
      body_encoding: "base64",
      delivery_info: { exchange: "", routing_key: queue },
    },
  };
}
