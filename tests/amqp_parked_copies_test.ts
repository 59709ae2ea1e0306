/**
 * Copies in RabbitMQ's `celeriac.parked`: the two copies of a message
 * parked twice (what a loss mid-park leaves, see amqp_park_race_test.ts;
 * here two identical publishes, each taken and parked) are requeued once
 * however few a requeue moves at a time. The test's own vhost.
 */

import assert from "node:assert/strict";
import { type AmqpBroker, openAmqpBroker } from "../src/broker/amqp.ts";
import { encodeTaskMessage, type TaskMessageInput } from "../src/protocol/task_message.ts";
import { uniqueQueue } from "./broker_conformance.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

/** Publish two messages of one task id (`variant` sets what differs), take and park both, then `check`. */
async function parkTwo(
  label: string,
  variant: (i: number) => Partial<TaskMessageInput>,
  check: (broker: AmqpBroker, q: string) => Promise<void>,
): Promise<void> {
  const vhost = await createVhost(label);
  const broker = await openAmqpBroker(vhost.url(), {});
  try {
    const id = `copies-${crypto.randomUUID()}`;
    const q = uniqueQueue(label);
    for (let i = 0; i < 2; i++) {
      const m = encodeTaskMessage({
        task: "t.nope",
        id,
        args: [1],
        kwargs: {},
        now: new Date(0),
        origin: "x",
        replyTo: "",
        ...variant(i),
      });
      await broker.publish(m, { routingKey: q });
    }
    const taken = await broker.take([q], { max: 2, signal: AbortSignal.timeout(10_000) });
    if (taken.length < 2) {
      taken.push(...await broker.take([q], { max: 1, signal: AbortSignal.timeout(10_000) }));
    }
    const parked = await broker.reject(
      taken.map((delivery) => ({ delivery, reason: "r", taskId: id })),
    );
    assert.equal(parked.length, 2, "both parked");
    await check(broker, q);
  } finally {
    await broker.close();
    await vhost.remove();
  }
}

/** Take and acknowledge what is in `q` until it stays empty for a second; how many. */
async function drain(broker: AmqpBroker, q: string): Promise<number> {
  let n = 0;
  while (true) {
    const got = await broker.take([q], { max: 10, signal: AbortSignal.timeout(1_000) }).catch(
      () => [],
    );
    if (got.length === 0) return n;
    n += got.length;
    await broker.ack(got);
  }
}

Deno.test({
  name: "amqp parked copies: two copies of one message requeued one at a time move once",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: each requeue read only `limit` messages, so the second met the second copy and moved it (2 !== 1).
  await parkTwo("copies-limit1", () => ({}), async (broker, q) => {
    assert.equal((await broker.listParked()).length, 1, "listed once");
    assert.equal(await broker.requeueParked({ limit: 1 }), 1, "the first requeue moves it");
    assert.equal(
      await broker.requeueParked({ limit: 1 }),
      0,
      "the second has nothing left to move",
    );
    assert.equal(await broker.countParked(), 0, "the second copy dropped");
    assert.equal(await drain(broker, q), 1, "back in its queue once");
  });
});
