/**
 * A RabbitMQ delivery's body owns its bytes: amqplib hands content as a view
 * into the socket's read chunk, and a view would make every post of the body
 * to a Web Worker clone (and keep alive) the whole chunk.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { fromIncoming } from "../src/broker/amqp_message.ts";

Deno.test("amqp: fromIncoming copies the content out of amqplib's read chunk", () => {
  const chunk = Buffer.alloc(32 * 1024, 0x20);
  const body = Buffer.from('[[1, 2], {}, {"callbacks": null}]');
  body.copy(chunk, 1000);
  const content = chunk.subarray(1000, 1000 + body.length);
  const { message } = fromIncoming(
    {
      content,
      fields: { deliveryTag: 1, redelivered: false, exchange: "", routingKey: "celery" },
      properties: { contentType: "application/json", contentEncoding: "utf-8", headers: {} },
    } as Parameters<typeof fromIncoming>[0],
  );
  assert.equal(message.body.byteLength, body.length);
  assert.equal(message.body.buffer.byteLength, body.length, "the body has a buffer of its own");
  assert.equal(new TextDecoder().decode(message.body), body.toString());
  assert.ok(structuredClone(message.body).buffer.byteLength < 100, "a clone copies the body only");
  chunk.fill(0);
  assert.equal(
    new TextDecoder().decode(message.body),
    body.toString(),
    "later reads leave it intact",
  );
});
