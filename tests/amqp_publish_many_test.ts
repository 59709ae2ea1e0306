/**
 * The RabbitMQ broker's batch publish: every message of a batch written on
 * the confirm channel with the confirms in flight together, each target
 * routed once; the batch resolves once RabbitMQ confirmed them all. What a
 * worker's follow-ups (a group's members after a chain's step) and a
 * client's `sendMany` go through.
 */

import assert from "node:assert/strict";
import { ExchangeNotFoundError } from "../mod.ts";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import type { Broker, Delivery, Publication } from "../src/broker/port.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("publish-many");
const fast = { backoff: { initialMs: 50, maxMs: 500 }, publishTimeout: 10 };

const textOf = (d: Delivery) => JSON.parse(new TextDecoder().decode(d.body)) as string;

/**
 * Take (and acknowledge) messages of `q` until `n` different ones came, or
 * none came for 2 s; returns them in the order taken.
 */
async function takeAll(broker: Broker, q: string, n: number): Promise<string[]> {
  const got: string[] = [];
  const seen = new Set<string>();
  while (seen.size < n) {
    const ds = await broker.take([q], { max: 1000, signal: AbortSignal.timeout(2_000) });
    if (ds.length === 0) break;
    for (const t of ds.map(textOf)) {
      got.push(t);
      seen.add(t);
    }
    await broker.ack(ds);
  }
  return got;
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name: `amqp publishMany: ${name}`,
    ignore: WITHOUT_RABBITMQ,
    // A cut connection's leftovers end with it.
    sanitizeOps: false,
    sanitizeResources: false,
  }, fn);

test("every message reaches its queue, in order, each queue declared", async () => {
  const broker = await openAmqpBroker(vhost!.url(), fast);
  try {
    assert.ok(broker.publishMany, "the RabbitMQ broker publishes batches");
    const [a, b] = [uniqueQueue("many-a"), uniqueQueue("many-b")];
    const batch: Publication[] = [];
    for (let i = 0; i < 5000; i++) {
      batch.push({ message: message(`a${i}`), target: { routingKey: a } });
      if (i % 1000 === 0) batch.push({ message: message(`b${i}`), target: { routingKey: b } });
    }
    await broker.publishMany(batch);
    assert.equal(await broker.queueDepth(a), 5000);
    assert.equal(await broker.queueDepth(b), 5);
    assert.deepEqual(
      await takeAll(broker, a, 5000),
      Array.from({ length: 5000 }, (_, i) => `a${i}`),
    );
    assert.deepEqual(await takeAll(broker, b, 5), ["b0", "b1000", "b2000", "b3000", "b4000"]);
  } finally {
    await broker.close();
  }
});

test("a message for an exchange that does not exist refuses the batch: nothing sent", async () => {
  // It was dropped with a log line and the batch resolved: a send that went nowhere.
  const broker = await openAmqpBroker(vhost!.url(), fast);
  try {
    const q = uniqueQueue("many-ex");
    await broker.declareQueue(q);
    const err = await broker.publishMany!([
      { message: message("one"), target: { routingKey: q } },
      { message: message("lost"), target: { exchange: "no-such-exchange", routingKey: q } },
      { message: message("two"), target: { routingKey: q } },
    ]).then(() => null, (e) => e);
    assert.ok(err instanceof ExchangeNotFoundError, String(err));
    assert.equal(err.code, "EXCHANGE_NOT_FOUND");
    assert.match(err.message, /Exchange "no-such-exchange" does not exist/);
    assert.equal(await broker.queueDepth(q), 0);
    await assert.rejects(
      broker.publish(message("alone"), { exchange: "no-such-exchange", routingKey: q }),
      ExchangeNotFoundError,
    );
    // The broker goes on: the next messages go.
    await broker.publishMany!([{ message: message("three"), target: { routingKey: q } }]);
    assert.deepEqual(await takeAll(broker, q, 1), ["three"]);
  } finally {
    await broker.close();
  }
});

test("an aborted signal sends nothing and rejects with its reason", async () => {
  const broker = await openAmqpBroker(vhost!.url(), fast);
  try {
    const q = uniqueQueue("many-abort");
    await broker.declareQueue(q);
    const stop = new AbortController();
    stop.abort(new Error("stopped"));
    await assert.rejects(
      broker.publishMany!([{ message: message("x"), target: { routingKey: q } }], {
        signal: stop.signal,
      }),
      /stopped/,
    );
    assert.equal(await broker.queueDepth(q), 0);
  } finally {
    await broker.close();
  }
});

test("a connection cut part way: what was not confirmed goes again on the next one", async () => {
  const { proxy, url } = LossyProxy.before(vhost!.url());
  const broker = await openAmqpBroker(url, fast);
  const direct = await openAmqpBroker(vhost!.url(), fast);
  try {
    const q = uniqueQueue("many-cut");
    await broker.declareQueue(q);
    const n = 20_000;
    const publishing = broker.publishMany!(
      Array.from(
        { length: n },
        (_, i) => ({ message: message(`m${i}`), target: { routingKey: q } }),
      ),
    );
    // Cut once RabbitMQ has some of them.
    while (await direct.queueDepth(q) === 0) await new Promise((r) => setTimeout(r, 5));
    proxy.cut();
    await publishing;
    assert.ok(await direct.queueDepth(q) >= n, "RabbitMQ has them all once publishMany resolved");
    const got = await takeAll(direct, q, n);
    const unique = new Set(got);
    assert.equal(unique.size, n, "every message arrived (at least once)");
    assert.ok(proxy.accepted >= 2, "the batch went on over a new connection");
  } finally {
    await broker.close();
    await direct.close();
    proxy.close();
  }
});

Deno.test({
  name: "amqp publishMany: remove the vhost",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  await vhost!.remove();
});
