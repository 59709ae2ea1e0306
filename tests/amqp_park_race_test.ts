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
import { type AmqpBroker, openAmqpBroker } from "../src/broker/amqp.ts";
import type { AmqpSession } from "../src/broker/amqp_connection.ts";
import { AmqpPublisher } from "../src/broker/amqp_publish.ts";
import type { Delivery } from "../src/broker/port.ts";
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

/** After the park across a loss: the broker, the redelivery, its task id and queue. */
type Finish = (broker: AmqpBroker, again: Delivery, id: string, q: string) => Promise<void>;

/**
 * Reject one delivery while the park's first confirmed copy is followed by
 * the loss of the connection (`then` runs after it: return, or throw as a
 * confirm lost with its connection does), check that the message came
 * back and that exactly one copy is parked, then `finish` (by default,
 * acknowledge the redelivery).
 */
async function parkAcrossLoss(
  label: string,
  then: (session: AmqpSession) => void,
  finish: Finish = (broker, again) => broker.ack([again]),
) {
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
    await finish(broker, again, id, q);
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

Deno.test({
  name: "amqp park race: a message parked again after a loss mid-park is listed and requeued once",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: both copies listed (2 !== 1) and requeued, so the task would run twice.
  await parkAcrossLoss("park-twice", () => {}, async (broker, again, id, q) => {
    const rejection = { delivery: again, reason: "r", taskId: id };
    assert.deepEqual(await broker.reject([rejection]), [rejection], "the redelivery is parked");
    assert.equal(await broker.countParked(), 2, "two copies of it");
    const parked = (await broker.listParked({ limit: 1000 })).filter((p) => p.taskId === id);
    assert.equal(parked.length, 1, "listed once");
    assert.equal(await broker.requeueParked(), 1, "requeued once");
    assert.equal(await broker.countParked(), 0, "the second copy dropped");
    const [back] = await broker.take([q], { max: 1, signal: AbortSignal.timeout(20_000) });
    assert.equal(back.headers.id, id, "back in its queue");
    await broker.ack([back]);
  });
});
