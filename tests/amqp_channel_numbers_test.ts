/**
 * A channel RabbitMQ closes while amqplib still has its frames queued (a
 * message over `max_message_size` published through amqplib, a second one
 * behind it): a channel opened at once must not take its number, or its
 * `channel.open` reaches RabbitMQ between the old channel's body frames and
 * RabbitMQ closes the whole connection (505 UNEXPECTED_FRAME). Before
 * src/broker/amqp_channel_numbers.ts the new channel took number 1 again and
 * the connection was lost (the rpc:// sender then sent a routed result twice).
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { AmqpConnection } from "../src/broker/amqp_connection.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ignore = WITHOUT_RABBITMQ;
const vhost = ignore ? null : await createVhost("chnumbers");
/** Over RabbitMQ's default max_message_size (134,217,728 bytes). */
const BIG = 129 * 2 ** 20;

/** The amqplib internals read here: a channel's number and its write buffer. */
interface Internals {
  ch: number;
  connection: { channels: ({ buffer: { readableLength: number } } | null)[] };
}

Deno.test(
  {
    name: "amqp channel numbers: a channel opened as RabbitMQ closes one keeps the connection",
    ignore,
  },
  async () => {
    const queue = `chnumbers-${crypto.randomUUID()}`;
    const conn = new AmqpConnection(vhost!.url());
    await conn.start();
    try {
      const session = await conn.session();
      const shared = await session.model.createConfirmChannel();
      await shared.assertQueue(queue);
      const old = shared as unknown as Internals;
      let queuedAtClose = -1;
      const { promise: reopened, resolve } = Promise.withResolvers<Promise<unknown>>();
      shared.on(
        "error",
        () => queuedAtClose = old.connection.channels[old.ch]?.buffer.readableLength ?? 0,
      );
      // As a publisher sending again what the close discarded: a channel of its own, at once.
      shared.on("close", () => resolve(session.model.createConfirmChannel()));
      const ignoreOutcome = () => {};
      shared.publish("", queue, Buffer.from("before"), {}, ignoreOutcome);
      shared.publish("", queue, Buffer.alloc(BIG, 120), {}, ignoreOutcome);
      shared.publish("", queue, Buffer.alloc(BIG, 121), {}, ignoreOutcome);
      shared.publish("", queue, Buffer.from("after"), {}, ignoreOutcome);
      const fresh = await (await reopened) as Awaited<
        ReturnType<typeof session.model.createConfirmChannel>
      >;
      fresh.publish("", queue, Buffer.from("again"), {});
      await fresh.waitForConfirms();
      assert.ok(
        queuedAtClose > 0,
        `frames still queued when RabbitMQ closed the channel: ${queuedAtClose}`,
      );
      assert.notEqual((fresh as unknown as Internals).ch, old.ch);
      const bodies: string[] = [];
      while (true) {
        const m = await fresh.get(queue, { noAck: true });
        if (m === false) break;
        bodies.push(m.content.toString());
      }
      assert.deepEqual(bodies, ["before", "again"]);
      assert.equal(session.lost.aborted, false);
      await fresh.deleteQueue(queue);
    } finally {
      await conn.close();
    }
  },
);

Deno.test({ name: "amqp channel numbers: clean up the test vhost", ignore }, async () => {
  await vhost!.remove();
});
