/**
 * A URL whose scheme does not match the server at its address (an
 * `amqp://` URL with Redis's port, a `redis://` URL with RabbitMQ's port):
 * the connect error says which server answered and what to use, on the
 * broker and on the result backend, and is not retried (only a new URL
 * fixes it).
 */

import assert from "node:assert/strict";
import { openBackend, openBroker } from "../protocol.ts";
import { RABBITMQ_URL } from "./helpers/rabbitmq.ts";
import { REDIS_URL } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `wrong server: ${name}`, ignore: WITHOUT_REDIS || WITHOUT_RABBITMQ }, fn);

const redis = new URL(REDIS_URL);
const rabbit = new URL(RABBITMQ_URL);
const redisAddress = `${redis.hostname}:${redis.port || 6379}`;
const rabbitAddress = `${rabbit.hostname}:${rabbit.port || 5672}`;

function rejectsWith(re: RegExp) {
  return (e: Error & { code?: string; transient?: boolean }) => {
    assert.equal(e.name, "BrokerConnectionError", e.message);
    assert.match(e.message, re);
    assert.equal(e.transient, false, "only a new URL helps: no retry");
    return true;
  };
}

test("a redis:// URL with RabbitMQ's port says AMQP answered, broker and backend", async () => {
  const url = `redis://${rabbitAddress}/0`;
  const says = new RegExp(
    `the server at ${rabbitAddress} speaks AMQP \\(RabbitMQ\\?\\), not Redis\\. ` +
      `Use amqp://${rabbitAddress}/… for RabbitMQ, or the Redis port \\(6379 by default\\)`,
  );
  await assert.rejects(openBroker(url), rejectsWith(says));
  await assert.rejects(openBackend(url), rejectsWith(says));
});

test("an amqp:// URL with Redis's port says Redis answered", async () => {
  // Redis never answers the AMQP header: the connect times out (1 s here), then the probe tells.
  const url = `amqp://guest:guest@${redisAddress}//?connect_timeout=1`;
  await assert.rejects(
    openBroker(url),
    rejectsWith(
      new RegExp(
        `the server at ${redisAddress} speaks Redis, not AMQP\\. Use redis://${redisAddress}/… ` +
          "for Redis, or the RabbitMQ port \\(5672 by default\\)",
      ),
    ),
  );
});

test("a server that is the right kind is not blamed: a refused connect stays refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assert.rejects(
    openBroker(`redis://127.0.0.1:${port}/0`),
    (e: Error & { transient?: boolean }) => {
      assert.match(e.message, /connection refused/i);
      assert.doesNotMatch(e.message, /speaks/);
      assert.equal(e.transient, true);
      return true;
    },
  );
});
