/**
 * A send RabbitMQ refuses by closing the shared confirm channel (its
 * exchange deleted after the broker cached it as existing: 404) must not
 * duplicate the sends in flight with it. RabbitMQ handles a channel's frames
 * in order: every send written before the refused one was routed (only its
 * confirm was lost with the channel), every send after it was discarded.
 * Before the fix, all of them were published again: 300 sends, 600 messages.
 */

import assert from "node:assert/strict";
import amqp from "amqplib";
import { ExchangeNotFoundError } from "../mod.ts";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ignore = WITHOUT_RABBITMQ;
const vhost = ignore ? null : await createVhost("pubdup");
const BEFORE = 300;
const AFTER = 20;

/** What a send ended with: "ok" or its error. */
function outcome(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => "ok", (e: unknown) => e);
}

/** Declare `exchange`, let the broker cache it as existing, then delete it behind its back. */
async function staleExchange(
  broker: Awaited<ReturnType<typeof openAmqpBroker>>,
  exchange: string,
): Promise<void> {
  const conn = await amqp.connect(vhost!.url());
  try {
    const ch = await conn.createChannel();
    await ch.assertExchange(exchange, "direct", { durable: true });
    await broker.publish(message("warm"), { exchange, routingKey: "x" });
    await ch.deleteExchange(exchange);
  } finally {
    await conn.close();
  }
}

Deno.test({ name: "publish dup: sends in flight with a refused one go once", ignore }, async () => {
  const broker = await openAmqpBroker(vhost!.url());
  try {
    const queue = uniqueQueue("pubdup");
    await broker.declareQueue(queue);
    await staleExchange(broker, "pubdup.gone");
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < BEFORE; i++) {
      sends.push(outcome(broker.publish(message(`a${i}`), { routingKey: queue })));
    }
    const bad = outcome(
      broker.publish(message("bad"), { exchange: "pubdup.gone", routingKey: "x" }),
    );
    for (let i = 0; i < AFTER; i++) {
      sends.push(outcome(broker.publish(message(`b${i}`), { routingKey: queue })));
    }
    const results = await Promise.all(sends);
    const err = await bad;
    // Let any duplicate land before counting. Before the fix: 640.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await broker.queueDepth(queue), BEFORE + AFTER);
    assert.deepEqual(results, Array(BEFORE + AFTER).fill("ok"));
    assert.ok(err instanceof ExchangeNotFoundError, String(err));
    assert.equal(err.exchange, "pubdup.gone");
  } finally {
    await broker.close();
  }
});

Deno.test({ name: "publish dup: a batch with a refused send goes once", ignore }, async () => {
  const broker = await openAmqpBroker(vhost!.url());
  try {
    const queue = uniqueQueue("pubdupb");
    await broker.declareQueue(queue);
    await staleExchange(broker, "pubdup.goneb");
    const batch = [
      ...Array.from(
        { length: BEFORE },
        (_, i) => ({ message: message(`a${i}`), target: { routingKey: queue } }),
      ),
      { message: message("bad"), target: { exchange: "pubdup.goneb", routingKey: "x" } },
      ...Array.from(
        { length: AFTER },
        (_, i) => ({ message: message(`b${i}`), target: { routingKey: queue } }),
      ),
    ];
    const err = await outcome(broker.publishMany(batch));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await broker.queueDepth(queue), BEFORE + AFTER);
    assert.ok(err instanceof Error && err.cause instanceof ExchangeNotFoundError, String(err));
    const outcomes = (err as Error & { outcomes: string[] }).outcomes;
    assert.deepEqual(outcomes, [
      ...Array(BEFORE).fill("sent"),
      "unsent",
      ...Array(AFTER).fill("sent"),
    ]);
  } finally {
    await broker.close();
  }
});

Deno.test({ name: "publish dup: clean up the test vhost", ignore }, async () => {
  await vhost!.remove();
});
