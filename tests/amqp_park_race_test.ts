/**
 * A park on RabbitMQ whose delivery's connection closes while the park is
 * being written: the parked copy is there, but RabbitMQ delivers the
 * message again, so `reject` does not report it parked (the worker would
 * count and announce a park and then judge the redelivery again). The
 * test's own vhost, whose connections the server closes.
 */

import assert from "node:assert/strict";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { AmqpPublisher } from "../src/broker/amqp_publish.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { uniqueQueue } from "./broker_conformance.ts";
import { createVhost, rabbitmqctl } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("park-race");
const fast = { backoff: { initialMs: 50, maxMs: 500 } };

async function waitUntil(what: string, ok: () => boolean) {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name: "amqp park race: a delivery whose connection closes during its park is not reported parked",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const broker = await openAmqpBroker(vhost!.url(), fast);
  const confirm = AmqpPublisher.prototype.confirmPublish;
  try {
    const id = `race-${crypto.randomUUID()}`;
    const q = uniqueQueue("park-race");
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
    // The park's copy is written, then the connections close before reject looks again.
    AmqpPublisher.prototype.confirmPublish = async function (this: AmqpPublisher, ...args) {
      await confirm.apply(this, args);
      if (args[2] !== "celeriac.parked") return;
      await rabbitmqctl(
        "close_all_connections",
        "--vhost",
        vhost!.name,
        "celeriac test: lost mid-park",
      );
      await waitUntil("the broker saw the loss", () => broker.connectionState !== "open");
    };
    const written = await broker.reject([{ delivery: d, reason: "r", taskId: id }]);
    AmqpPublisher.prototype.confirmPublish = confirm;
    // Before: [the rejection], though the message came back as well.
    assert.deepEqual(written, []);
    const [again] = await broker.take([q], { max: 1, signal: AbortSignal.timeout(20_000) });
    assert.equal(again.headers.id, id);
    assert.equal(again.redelivered, true, "the message came back by itself");
    const parked = (await broker.listParked({ limit: 1000 })).filter((p) => p.taskId === id);
    assert.equal(parked.length, 1, "its copy is parked");
    await broker.ack([again]);
  } finally {
    AmqpPublisher.prototype.confirmPublish = confirm;
    await broker.close();
    await vhost!.remove();
  }
});
