/**
 * A pidbox subscription whose signal aborts while it is being set up (a
 * worker's shutdown during start-up stops waiting for it, and aborts its
 * signal) subscribes nothing once the set-up completes: no consumer, no
 * pattern subscription, no binding left, so a stopped worker never
 * receives (and answers) a remote-control command.
 *
 * Redis: a private redis-server paused for writes holds the binding's
 * SADD; RabbitMQ: a proxy holds back the server's replies (the test's own
 * virtual host on the shared server).
 */

import assert from "node:assert/strict";
import amqp from "amqplib";
import { Buffer } from "node:buffer";
import type { Broker, Message } from "../protocol.ts";
import { openAmqpBroker, openRedisBroker } from "../transports.ts";
import { PIDBOX_EXCHANGE } from "../src/protocol/control.ts";
import { subscriberQueueDeclaration } from "../src/broker/amqp_topology.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { createVhost, RABBITMQ_URL } from "./helpers/rabbitmq.ts";
import { rawRedis } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

/** A pidbox broadcast (the body is never decoded here). */
function broadcastMessage(): Message {
  return {
    body: new TextEncoder().encode('{"method": "ping", "arguments": {}}'),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    properties: {},
  };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("Redis: a pidbox subscription aborted during its SADD subscribes nothing and unbinds", async () => {
  const redis = await PrivateRedis.start();
  const raw = await rawRedis(redis.url);
  let broker: Broker | null = null;
  try {
    broker = await openRedisBroker(redis.url);
    const connections = async () =>
      Number(/total_connections_received:(\d+)/.exec(await raw.info("stats"))![1]);
    const queue = `w-${crypto.randomUUID().slice(0, 8)}.${PIDBOX_EXCHANGE}`;
    const received: Message[] = [];
    const stop = new AbortController();
    await raw.call("CLIENT", "PAUSE", "60000", "WRITE");
    const before = await connections();
    const subscribing = broker.subscribe(PIDBOX_EXCHANGE, (m) => received.push(m), {
      signal: stop.signal,
      queue,
    });
    await sleep(200);
    stop.abort();
    await raw.call("CLIENT", "UNPAUSE");
    await within(subscribing, 3000, "subscribe()");
    await sleep(300);
    await broker.broadcast(PIDBOX_EXCHANGE, broadcastMessage());
    await sleep(300);
    assert.equal(await connections(), before, "no connection was opened to subscribe");
    assert.equal(await raw.call("PUBSUB", "NUMPAT"), 0, "no pattern subscription");
    const bindings = await raw.smembers(`_kombu.binding.${PIDBOX_EXCHANGE}`);
    assert.deepEqual(bindings.filter((b) => b.includes(queue)), [], "the binding is removed");
    assert.deepEqual(received, [], "nothing was received");
  } finally {
    await raw.call("CLIENT", "UNPAUSE").catch(() => {});
    raw.disconnect();
    await broker?.close();
    await redis.close();
  }
});

Deno.test({
  name: "RabbitMQ: a pidbox subscription aborted while its channel opens consumes nothing",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("subscribe-abort");
  const server = new URL(RABBITMQ_URL);
  const proxy = LossyProxy.start({ hostname: server.hostname, port: Number(server.port || 5672) });
  let broker: Broker | null = null;
  const direct = await amqp.connect(vhost.url());
  try {
    broker = await openAmqpBroker(
      vhost.url().replace(`@${server.host}/`, `@127.0.0.1:${proxy.port}/`),
    );
    const queue = `w-${crypto.randomUUID().slice(0, 8)}.${PIDBOX_EXCHANGE}`;
    // The subscriber's queue, declared as kombu's Mailbox declares it, with a request waiting:
    // a consumer, even one cancelled at once, takes it (no acknowledgements), and the queue
    // (auto-delete) goes with its consumer.
    const decl = subscriberQueueDeclaration(PIDBOX_EXCHANGE, queue);
    const ch = await direct.createChannel();
    await ch.assertExchange(decl.exchange.name, decl.exchange.type, {
      durable: decl.exchange.durable,
      autoDelete: false,
    });
    await ch.assertQueue(queue, {
      durable: decl.queue.durable,
      autoDelete: decl.queue.autoDelete,
      arguments: decl.queue.arguments,
    });
    await ch.bindQueue(queue, decl.exchange.name, decl.bindingKey);
    ch.sendToQueue(queue, Buffer.from('{"method": "ping", "arguments": {}}'));
    await ch.close();
    /** Messages waiting in the queue; null once it is gone. */
    const waiting = async () => {
      const check = await direct.createChannel();
      check.on("error", () => {});
      try {
        return (await check.checkQueue(queue)).messageCount;
      } catch {
        return null;
      } finally {
        await check.close().catch(() => {});
      }
    };
    while (await waiting() === 0) await sleep(20);
    const received: Message[] = [];
    const stop = new AbortController();
    proxy.pauseReplies();
    const subscribing = broker.subscribe(PIDBOX_EXCHANGE, (m) => received.push(m), {
      signal: stop.signal,
      queue,
    });
    await sleep(200);
    stop.abort();
    proxy.resumeReplies();
    await within(subscribing, 3000, "subscribe()");
    await sleep(300);
    assert.equal(await waiting(), 1, "the waiting request is still in the queue");
    assert.deepEqual(received, [], "nothing was received");
  } finally {
    await direct.close();
    await broker?.close();
    proxy.close();
    await vhost.remove();
  }
});
