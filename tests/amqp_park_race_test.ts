/**
 * A park on RabbitMQ whose delivery's connection closes while the park is
 * being written: RabbitMQ delivers the message again, so `reject` does not
 * report it parked (the worker would count and announce a park and then
 * judge the redelivery again), and the next connection does not write its
 * copy a second time (operators would see two, and `parked --requeue`
 * would run the task twice). The test's own vhost, whose connections the
 * server closes.
 */

import assert from "node:assert/strict";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import type { AmqpSession } from "../src/broker/amqp_connection.ts";
import { AmqpPublisher } from "../src/broker/amqp_publish.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { uniqueQueue } from "./broker_conformance.ts";
import { createVhost, rabbitmqctl } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const fast = { backoff: { initialMs: 50, maxMs: 500 } };

/** Close every connection of `vhost` and wait until `session` saw its own end. */
async function loseConnection(vhost: string, session: AmqpSession): Promise<void> {
  await rabbitmqctl("close_all_connections", "--vhost", vhost, "celeriac test: lost mid-park");
  if (session.lost.aborted) return;
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const timer = setTimeout(() => reject(new Error("the connection's end was not seen")), 20_000);
  session.lost.addEventListener("abort", () => resolve(), { once: true });
  await promise.finally(() => clearTimeout(timer));
}

/**
 * Reject one delivery while the park's first confirmed copy is followed by
 * the loss of the connection (`then` runs after it: return, or throw as a
 * confirm lost with its connection does), then check that the message came
 * back and that exactly one copy is parked.
 */
async function parkAcrossLoss(label: string, then: (session: AmqpSession) => void) {
  const vhost = await createVhost(label);
  const broker = await openAmqpBroker(vhost.url(), fast);
  const confirm = AmqpPublisher.prototype.confirmPublish;
  try {
    const id = `race-${crypto.randomUUID()}`;
    const q = uniqueQueue(label);
    const m = encodeTaskMessage({
      task: "t.nope",
      id,
      args: [],
      kwargs: {},
      now: new Date(),
      origin: "x",
      replyTo: "",
    });
    await broker.publish(m, { routingKey: q });
    const [d] = await broker.take([q], { max: 1, signal: AbortSignal.timeout(10_000) });
    let cut = false;
    AmqpPublisher.prototype.confirmPublish = async function (this: AmqpPublisher, ...args) {
      await confirm.apply(this, args);
      if (args[2] !== "celeriac.parked" || cut) return;
      cut = true;
      await loseConnection(vhost.name, args[0]);
      then(args[0]);
    };
    const written = await broker.reject([{ delivery: d, reason: "r", taskId: id }]);
    AmqpPublisher.prototype.confirmPublish = confirm;
    assert.ok(cut, "the connection was closed mid-park");
    assert.deepEqual(written, [], "not reported parked");
    const [again] = await broker.take([q], { max: 1, signal: AbortSignal.timeout(20_000) });
    assert.equal(again.headers.id, id);
    assert.equal(again.redelivered, true, "the message came back by itself");
    const parked = (await broker.listParked({ limit: 1000 })).filter((p) => p.taskId === id);
    assert.equal(parked.length, 1, "its copy is parked once");
    await broker.ack([again]);
  } finally {
    AmqpPublisher.prototype.confirmPublish = confirm;
    await broker.close();
    await vhost.remove();
  }
}

Deno.test({
  name:
    "amqp park race: a delivery whose connection closes after its park is confirmed is not reported parked",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  await parkAcrossLoss("park-race", () => {});
});

Deno.test({
  name:
    "amqp park race: a park whose confirm is lost with the connection is not written again on the next one",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: the publisher ran the park again on the new connection, a second copy (2 !== 1).
  await parkAcrossLoss("park-lost-confirm", (session) => {
    throw session.lost.reason;
  });
});
