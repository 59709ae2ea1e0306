/**
 * Closing the RabbitMQ broker and the rpc:// result backend when the
 * server stops answering over a connection that stays up (a hung server,
 * a network that drops replies): close() ends instead of waiting for
 * RabbitMQ's Close-Ok forever, and nothing is lost — RabbitMQ puts the
 * deliveries left unacknowledged back in their queue once it sees the
 * connection gone.
 */

import assert from "node:assert/strict";
import { openRpcBackend } from "../src/backend/rpc.ts";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import type { Broker, Delivery } from "../src/broker/port.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { settlesWithin } from "./helpers/settles.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("close-silent");
const fast = { backoff: { initialMs: 50, maxMs: 500 }, publishTimeout: 5 };

const textOf = (d: Delivery) => JSON.parse(new TextDecoder().decode(d.body)) as string;

/** Publish a and b to `q`, take both, acknowledge a: b is left unacknowledged. */
async function takeBothAckA(broker: Broker, q: string): Promise<void> {
  await broker.declareQueue(q);
  for (const t of ["a", "b"]) await broker.publish(message(t), { routingKey: q });
  const got: Delivery[] = [];
  while (got.length < 2) {
    got.push(...await broker.take([q], { max: 2, signal: AbortSignal.timeout(10_000) }));
  }
  await broker.ack(got.filter((d) => textOf(d) === "a"));
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name: `amqp close: ${name}`,
    ignore: WITHOUT_RABBITMQ,
    // What was left unanswered is dropped with the connection.
    sanitizeOps: false,
    sanitizeResources: false,
  }, fn);

test("on a silent server the broker's close() ends, and the delivery left unacknowledged comes back", async () => {
  const { proxy, url } = LossyProxy.before(vhost!.url());
  const broker = await openAmqpBroker(url, fast);
  const direct = await openAmqpBroker(vhost!.url(), fast);
  const q = uniqueQueue("close-silent");
  try {
    await takeBothAckA(broker, q);
    proxy.holdReplies();
    assert.ok(
      await settlesWithin(broker.close(), 20_000),
      "close() still waiting 20 s after the server stopped answering",
    );
    proxy.cut();
    const back = await direct.take([q], { max: 2, signal: AbortSignal.timeout(15_000) });
    assert.deepEqual(back.map(textOf), ["b"]);
    assert.ok(back[0].redelivered);
    await direct.ack(back);
  } finally {
    proxy.close();
    await direct.close();
  }
});

test("an acknowledgement sent just before close() is kept (a live server)", async () => {
  const broker = await openAmqpBroker(vhost!.url(), fast);
  const direct = await openAmqpBroker(vhost!.url(), fast);
  const q = uniqueQueue("close-ack");
  try {
    await takeBothAckA(broker, q);
    await broker.close();
    const back = await direct.take([q], { max: 2, signal: AbortSignal.timeout(15_000) });
    assert.deepEqual(back.map(textOf), ["b"], "a, acknowledged, is not delivered again");
    await direct.ack(back);
  } finally {
    await direct.close();
  }
});

test("on a silent server the rpc:// backend's close() ends", async () => {
  const { proxy, url } = LossyProxy.before(vhost!.url());
  const backend = await openRpcBackend("rpc://", { brokerUrl: url, ...fast });
  try {
    const id = crypto.randomUUID();
    const meta = encodeResultMeta({ taskId: id, status: "SUCCESS", result: 1 });
    await backend.store([{ taskId: id, status: "SUCCESS", meta, replyTo: backend.replyQueue }]);
    assert.equal((await backend.waitFor(id, AbortSignal.timeout(10_000))).status, "SUCCESS");
    const waiting = backend.waitFor(crypto.randomUUID());
    waiting.catch(() => {});
    proxy.holdReplies();
    assert.ok(
      await settlesWithin(backend.close(), 20_000),
      "close() still waiting 20 s after the server stopped answering",
    );
    await assert.rejects(waiting);
  } finally {
    proxy.close();
  }
});

test("clean up the test vhost", async () => {
  await vhost!.remove();
});
