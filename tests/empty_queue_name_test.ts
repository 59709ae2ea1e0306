/**
 * `app.queueDepth("")` and `app.purge("")`: the same TypeError on every
 * transport, saying to leave the argument out for the default queue. Before,
 * Redis and RabbitMQ answered 0 (RabbitMQ reads an empty queue name as the
 * channel's last declared queue) while KV threw its own TypeError. The
 * brokers refuse an empty name too, with the same message (one check, in
 * src/broker/errors.ts), and nothing waiting is touched.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

/** The app's and the broker's answers to an empty queue name, with one message waiting. */
async function refusesEmptyName(url: string): Promise<void> {
  const queue = `named-${crypto.randomUUID().slice(0, 8)}`;
  const app = new Celery({ broker: url, backend: null, defaultQueue: queue });
  try {
    await app.sendTask("t.kept", [1]);
    for (const method of ["queueDepth", "purge"] as const) {
      await assert.rejects(app[method](""), {
        name: "TypeError",
        message: `app.${method}() needs a queue name, got "": name a queue, or leave it out ` +
          `for the default queue ("${queue}", the defaultQueue option)`,
      });
      // One check for every broker (before, KV said "A queue name must be a non-empty string").
      await assert.rejects((await app.broker())[method](""), {
        name: "TypeError",
        message: `${method}() needs a queue name, got "": name a queue`,
      });
    }
    assert.equal(await app.queueDepth(), 1, "the waiting message is still there");
    assert.equal(await app.purge(), 1);
  } finally {
    await app.close();
  }
}

Deno.test("kv: queueDepth('') and purge('') are refused, saying how to name the default", async () => {
  await refusesEmptyName("kv://:memory:");
});

Deno.test({
  name: "redis: queueDepth('') and purge('') are refused, saying how to name the default",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("empty-queue");
  try {
    await refusesEmptyName(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`);
  } finally {
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "amqp: queueDepth('') and purge('') are refused, saying how to name the default",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("empty-queue");
  try {
    await refusesEmptyName(vhost.url());
  } finally {
    await vhost.remove();
  }
});
