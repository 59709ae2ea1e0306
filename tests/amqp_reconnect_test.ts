/**
 * The AMQP transport survives a dropped connection: a test-owned TCP proxy
 * between the client and RabbitMQ cuts every connection mid-stream, and
 * one test restarts RabbitMQ itself.
 */

import assert from "node:assert/strict";
import { type AmqpBroker, openAmqpBroker } from "../src/broker/amqp.ts";
import type { Delivery } from "../src/broker/port.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { createVhost, listQueues, RABBITMQ_URL, rabbitmqctl } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("reconnect");
const target = new URL(RABBITMQ_URL);
const fast = { backoff: { initialMs: 50, maxMs: 500 }, publishTimeout: 20 };

function viaProxy(proxy: { port: number }): string {
  return `amqp://guest:guest@127.0.0.1:${proxy.port}/${encodeURIComponent(vhost!.name)}`;
}

const textOf = (d: Delivery) => JSON.parse(new TextDecoder().decode(d.body)) as string;

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `amqp reconnect: ${name}`, ignore: WITHOUT_RABBITMQ }, fn);

async function waitUntil(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!await ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Consume until `n` distinct messages were acknowledged; returns every delivery seen. */
async function consume(broker: AmqpBroker, q: string, n: number, acked: Set<string>) {
  const seen: { text: string; redelivered: boolean }[] = [];
  while (acked.size < n) {
    const got = await broker.take([q], { max: 10, signal: AbortSignal.timeout(20_000) });
    if (got.length === 0) throw new Error(`take gave up with ${acked.size}/${n} acknowledged`);
    for (const d of got) seen.push({ text: textOf(d), redelivered: d.redelivered });
    await new Promise((r) => setTimeout(r, 2)); // some work
    await broker.ack(got);
    for (const d of got) acked.add(textOf(d));
  }
  return seen;
}

test("a cut mid-stream: publisher and consumer resume, nothing lost, nothing acked twice", async () => {
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 5672) });
  const publisher = await openAmqpBroker(viaProxy(proxy), fast);
  const consumer = await openAmqpBroker(viaProxy(proxy), fast);
  const q = uniqueQueue("cut");
  const n = 400;
  try {
    const acked = new Set<string>();
    const consuming = consume(consumer, q, n, acked);
    let published = 0;
    const publishing = (async () => {
      for (; published < n; published++) {
        await publisher.publish(message(`m${published}`), { routingKey: q });
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    await waitUntil("a quarter is consumed", () => acked.size >= n / 4);
    const cutAt = { published, acked: acked.size };
    await proxy.cut();
    await publishing;
    const seen = await consuming;
    assert.ok(cutAt.published < n && cutAt.acked < n, "the cut happened mid-stream");
    assert.equal(proxy.accepted >= 4, true, "both clients reconnected");
    for (let i = 0; i < n; i++) assert.ok(acked.has(`m${i}`), `m${i} was lost`);
    // A message seen twice was delivered again by RabbitMQ (its first ack died with the
    // connection), or published twice because its confirm was lost: never acked twice.
    const counts = new Map<string, number>();
    for (const s of seen) counts.set(s.text, (counts.get(s.text) ?? 0) + 1);
    const twice = [...counts].filter(([, c]) => c > 1).map(([t]) => t);
    for (const t of twice) {
      assert.ok(
        seen.filter((s) => s.text === t).slice(1).every((s) => s.redelivered) ||
          cutAt.published <= Number(t.slice(1)) + 1,
        `${t} was delivered twice without a reason`,
      );
    }
    await waitUntil("RabbitMQ holds nothing", async () => {
      const listed = (await listQueues(vhost!.name)).find((x) => x.name === q)!;
      return listed.messages_ready === 0 && listed.messages_unacknowledged === 0;
    });
  } finally {
    await publisher.close();
    await consumer.close();
    await proxy.close();
  }
});

test("a take blocked on an empty queue resumes by itself after a cut", async () => {
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 5672) });
  const consumer = await openAmqpBroker(viaProxy(proxy), fast);
  const direct = await openAmqpBroker(vhost!.url());
  const q = uniqueQueue("blocked");
  try {
    await direct.declareQueue(q);
    const waiting = consumer.take([q], { max: 1, signal: AbortSignal.timeout(15_000) });
    await new Promise((r) => setTimeout(r, 300));
    await proxy.cut();
    await waitUntil("the consumer reconnected", () => consumer.connectionState === "open");
    await direct.publish(message("after the cut"), { routingKey: q });
    const got = await waiting;
    assert.deepEqual(got.map(textOf), ["after the cut"]);
    await consumer.ack(got);
  } finally {
    await consumer.close();
    await direct.close();
    await proxy.close();
  }
});

test("deliveries of a dead connection are not settled on the new one", async () => {
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 5672) });
  const consumer = await openAmqpBroker(viaProxy(proxy), fast);
  const q = uniqueQueue("stale");
  try {
    await consumer.publish(message("s1"), { routingKey: q });
    await consumer.publish(message("s2"), { routingKey: q });
    const [first] = await consumer.take([q], { max: 1 });
    await proxy.cut();
    await waitUntil("the consumer reconnected", () => consumer.connectionState === "open");
    // s1 and s2 are both waiting again; acking the stale s1 must not ack anything on the new
    // channel (delivery tag 1 there would be whatever comes first now).
    await consumer.ack([first]);
    const again = await consumer.take([q], { max: 2, signal: AbortSignal.timeout(5000) });
    assert.deepEqual(again.map(textOf).sort(), ["s1", "s2"]);
    assert.equal(again.find((d) => textOf(d) === "s1")!.redelivered, true);
    await consumer.ack(again);
    await waitUntil("the queue is settled", async () => {
      const listed = (await listQueues(vhost!.name)).find((x) => x.name === q)!;
      return listed.messages_ready === 0 && listed.messages_unacknowledged === 0;
    });
  } finally {
    await consumer.close();
    await proxy.close();
  }
});

test("a subscription declares its queue again and keeps receiving after a cut", async () => {
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 5672) });
  const subscriber = await openAmqpBroker(viaProxy(proxy), fast);
  const sender = await openAmqpBroker(vhost!.url());
  const stop = new AbortController();
  const got: string[] = [];
  try {
    await subscriber.subscribe(
      "celery.pidbox",
      (m) => got.push(JSON.parse(new TextDecoder().decode(m.body))),
      {
        signal: stop.signal,
        queue: `celeriac@reconnect-${crypto.randomUUID().slice(0, 6)}.celery.pidbox`,
      },
    );
    await sender.broadcast("celery.pidbox", message("before"));
    await waitUntil("the first broadcast arrives", () => got.length === 1);
    await proxy.cut();
    await waitUntil("the subscriber reconnected", () => subscriber.connectionState === "open");
    // The queue is declared again asynchronously: broadcast until it is heard.
    await waitUntil("a broadcast after the cut arrives", async () => {
      await sender.broadcast("celery.pidbox", message("after"));
      await new Promise((r) => setTimeout(r, 100));
      return got.includes("after");
    });
  } finally {
    stop.abort();
    await subscriber.close();
    await sender.close();
    await proxy.close();
  }
});

test("publish during an outage fails after publishTimeout with a BrokerConnectionError", async () => {
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 5672) });
  const publisher = await openAmqpBroker(viaProxy(proxy), { ...fast, publishTimeout: 1 });
  try {
    await proxy.close(); // nothing listens any more
    await assert.rejects(
      publisher.publish(message("nowhere"), { routingKey: uniqueQueue("outage") }),
      (e: Error & { code?: string }) =>
        e.name === "BrokerConnectionError" && e.code === "BROKER_CONNECTION" &&
        /no connection to RabbitMQ for 1 s/.test(e.message) && /Check that/.test(e.message),
    );
  } finally {
    await publisher.close();
  }
});

test("RabbitMQ closing every connection and unreachable for a while: a blocked take and a publisher resume", async () => {
  // The server closes the connections itself (connection.close, CONNECTION_FORCED, as on a
  // restart) for this test's vhost only, and the test-owned proxy refuses reconnections for
  // a second: the shared RabbitMQ keeps running for everyone else.
  const proxy = LossyProxy.start({ hostname: target.hostname, port: Number(target.port || 5672) });
  const consumer = await openAmqpBroker(viaProxy(proxy), fast);
  const publisher = await openAmqpBroker(viaProxy(proxy), { ...fast, publishTimeout: 60 });
  const q = uniqueQueue("restart");
  try {
    await publisher.declareQueue(q);
    const waiting = consumer.take([q], { max: 1, signal: AbortSignal.timeout(60_000) });
    await new Promise((r) => setTimeout(r, 200));
    proxy.refuse(true);
    await rabbitmqctl("close_all_connections", "--vhost", vhost!.name, "celeriac test outage");
    await waitUntil("the consumer saw the loss", () => consumer.connectionState !== "open");
    const sending = publisher.publish(message("after the outage"), { routingKey: q });
    await new Promise((r) => setTimeout(r, 1000));
    assert.notEqual(consumer.connectionState, "open", "nothing reconnected during the outage");
    proxy.refuse(false);
    await sending;
    const got = await waiting;
    assert.deepEqual(got.map(textOf), ["after the outage"]);
    await consumer.ack(got);
  } finally {
    await consumer.close();
    await publisher.close();
    proxy.close();
  }
});

test("clean up the test vhost", async () => {
  await vhost!.remove();
});
