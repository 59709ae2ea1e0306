/**
 * Hostile task messages at a worker's intake: a message that cannot even be
 * decoded (a header whose value throws when turned into a string, a date
 * that is an integer beyond 2^53, ...) is parked by itself with a FAILURE
 * for its task id; the other messages of the batch it came in run.
 */

import assert from "node:assert/strict";
import { PARKED_KEY } from "../src/broker/redis_keys.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";
import { taskFailure, withWorker } from "./helpers/worker.ts";

/** A kombu Redis envelope of a JSON task message with these headers and body. */
function envelope(queue: string, headers: Record<string, unknown>, body: string): string {
  return JSON.stringify({
    body: new TextEncoder().encode(body).toBase64(),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    headers,
    properties: {
      delivery_tag: crypto.randomUUID(),
      body_encoding: "base64",
      delivery_info: { exchange: "", routing_key: queue },
    },
  });
}

Deno.test({
  name: "hostile intake: on Redis a task name that throws when printed parks only its own message",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("hostile-batch");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const redis = await rawRedis();
  try {
    await withWorker({ broker: url, backend: url }, { prefetch: 8 }, async (client, _w, queue) => {
      const good = [crypto.randomUUID(), crypto.randomUUID()];
      const bad = crypto.randomUUID();
      await redis.lpush(
        `${prefix}${queue}`,
        envelope(queue, { task: "t.add", id: good[0], lang: "py" }, "[[2, 3], {}, {}]"),
        envelope(queue, { task: { toString: 1 }, id: bad, lang: "py" }, "[[], {}, {}]"),
        envelope(queue, { task: "t.add", id: good[1], lang: "py" }, "[[4, 5], {}, {}]"),
      );
      // Before: both batch-mates failed with "InternalError: ... Cannot convert object to primitive value".
      assert.equal(await client.asyncResult(good[0]).get({ timeout: 10_000 }), 5);
      assert.equal(await client.asyncResult(good[1]).get({ timeout: 10_000 }), 9);
      const parked = await redis.lrange(`${prefix}${PARKED_KEY}`, 0, -1);
      assert.equal(parked.length, 1);
      assert.ok(parked[0].includes(bad));
    });
  } finally {
    await redis.quit();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name:
    "hostile batch: on RabbitMQ a task name that throws when printed parks only its own message",
  ignore: WITHOUT_RABBITMQ || WITHOUT_REDIS,
}, async () => {
  const vhost = await createVhost("hostile-batch");
  const prefix = uniquePrefix("hostile-batch-amqp");
  const backend = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  try {
    await withWorker(
      { broker: vhost.url(), backend },
      { prefetch: 8 },
      async (client, _w, queue) => {
        const broker = await client.broker();
        const ids = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
        const msgs = ids.map((id, i) =>
          encodeTaskMessage({
            task: "t.add",
            id,
            args: [i, 3],
            kwargs: {},
            now: new Date(),
            origin: "x@y",
            replyTo: "",
          })
        );
        msgs[1] = { ...msgs[1], headers: { ...msgs[1].headers, task: { toString: 1 } } };
        await broker.publishMany!(
          msgs.map((message) => ({ message, target: { routingKey: queue } })),
        );
        assert.equal(await client.asyncResult(ids[0]).get({ timeout: 10_000 }), 3);
        assert.equal(await client.asyncResult(ids[2]).get({ timeout: 10_000 }), 5);
      },
    );
  } finally {
    await vhost.remove();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "hostile intake: an eta or expires beyond 2^53 is refused with a FAILURE for its task id",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("hostile-eta");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const redis = await rawRedis();
  try {
    await withWorker({ broker: url, backend: url }, {}, async (client, _w, queue) => {
      for (const field of ["eta", "expires"]) {
        const id = crypto.randomUUID();
        // Written by hand: JSON.stringify has no integers beyond 2^53.
        const headers =
          `{"task": "t.add", "id": "${id}", "${field}": 123456789012345678901234567890}`;
        const raw = envelope(queue, {}, "[[2, 3], {}, {}]").replace(
          '"headers":{}',
          `"headers":${headers}`,
        );
        await redis.lpush(`${prefix}${queue}`, raw);
        // Before: parked with task id null and nothing stored; get() stayed PENDING.
        const err = await taskFailure(client.asyncResult(id).get({ timeout: 10_000 }));
        assert.match(
          err.message,
          new RegExp(`Header ${field} is not an ISO-8601 date: \\d+n`),
        );
      }
    });
  } finally {
    await redis.quit();
    await deleteKeys(prefix);
  }
});
