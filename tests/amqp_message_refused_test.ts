/**
 * One message RabbitMQ refuses by closing the shared confirm channel (a
 * body over its 128 MiB `max_message_size`, the server default, which a
 * test may not change on the shared server): only that send fails, with a
 * `MessageRefusedError` carrying RabbitMQ's reason; the sends in flight
 * with it on the same channel go through.
 */

import assert from "node:assert/strict";
import { MessageRefusedError } from "../mod.ts";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ignore = WITHOUT_RABBITMQ;
const vhost = ignore ? null : await createVhost("refused");
/** Just over RabbitMQ's default max_message_size (134,217,728 bytes). */
const TOO_BIG = 134_217_728 + 1024;

/** What a send ended with: "ok" or its error. */
function outcome(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => "ok", (e: unknown) => e);
}

Deno.test({ name: "message refused: an oversized publish fails alone", ignore }, async () => {
  const broker = await openAmqpBroker(vhost!.url());
  try {
    const queue = uniqueQueue("refused");
    await broker.declareQueue(queue);
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 5; i++) {
      sends.push(outcome(broker.publish(message(`a${i}`), { routingKey: queue })));
    }
    const big = { ...message("big"), body: new Uint8Array(TOO_BIG) };
    const bigSend = outcome(broker.publish(big, { routingKey: queue }));
    for (let i = 0; i < 5; i++) {
      sends.push(outcome(broker.publish(message(`b${i}`), { routingKey: queue })));
    }
    // Before: every send after the big one, and the big one, rejected with a bare "channel closed".
    assert.deepEqual(await Promise.all(sends), Array(10).fill("ok"));
    const err = await bigSend;
    assert.ok(err instanceof MessageRefusedError, String(err));
    assert.equal(err.code, "MESSAGE_REFUSED");
    assert.equal(err.replyCode, 406);
    assert.match(err.reason, /message size \d+ is larger than configured max size/);
    assert.match(err.message, /max_message_size/);
    assert.equal(await broker.queueDepth(queue), 10);
    // A batch with it: the others are sent, and the batch says which was not.
    const batch = [message("c0"), big, message("c1")].map((m) => ({
      message: m,
      target: { routingKey: queue },
    }));
    const batchErr = await outcome(broker.publishMany(batch));
    assert.ok(
      batchErr instanceof Error && batchErr.cause instanceof MessageRefusedError,
      String(batchErr),
    );
    assert.deepEqual((batchErr as Error & { outcomes: string[] }).outcomes, [
      "sent",
      "unsent",
      "sent",
    ]);
    assert.equal(await broker.queueDepth(queue), 12);
  } finally {
    await broker.close();
  }
});

Deno.test({ name: "message refused: clean up the test vhost", ignore }, async () => {
  await vhost!.remove();
});
