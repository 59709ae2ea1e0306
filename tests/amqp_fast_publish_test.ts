import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "amqplib";
import { createRequire } from "node:module";
import {
  encodePublish,
  publishSimple,
  type SimpleProperties,
  simpleProperties,
} from "../src/broker/amqp_fast_publish.ts";
import { RABBITMQ_URL } from "./helpers/rabbitmq.ts";

// amqplib's encoders (not exported: loaded by path, next to its entry point).
const require = createRequire(import.meta.url);
const lib = (name: string) => require(require.resolve("amqplib").replace(/[^/]+$/, `lib/${name}`));
const Args = lib("api_args.js");
const defs = lib("defs.js");
const frame = lib("frame.js");

/** What amqplib 2.3 writes for the same publish (connection.sendMessage + sendContent). */
function amqplibFrames(
  channel: number,
  frameMax: number,
  exchange: string,
  routingKey: string,
  props: SimpleProperties,
  body: Uint8Array,
): Buffer {
  const fields = Args.publish(exchange, routingKey, props);
  const content = Buffer.from(body);
  const parts = [
    defs.encodeMethod(defs.BasicPublish, channel, fields),
    defs.encodeProperties(defs.BasicProperties, channel, content.length, fields),
  ];
  const maxBody = frameMax - 8;
  for (let at = 0; at < content.length; at += maxBody) {
    parts.push(frame.makeBodyFrame(channel, content.subarray(at, at + maxBody)));
  }
  return Buffer.concat(parts);
}

Deno.test("fast publish: the frames are amqplib's, byte for byte", () => {
  const propsCases: SimpleProperties[] = [
    {},
    {
      contentType: "application/json",
      contentEncoding: "utf-8",
      deliveryMode: 1,
      priority: 0,
      correlationId: crypto.randomUUID(),
    },
    { deliveryMode: 2, replyTo: "répliques ✓", correlationId: "c" },
    { contentEncoding: "binary", priority: 255 },
  ];
  const bodies = [0, 1, 120, 4088, 4089, 10_000].map((n) =>
    Uint8Array.from({ length: n }, (_, i) => i % 251)
  );
  for (const [channel, frameMax] of [[1, 131072], [300, 4096]]) {
    for (const props of propsCases) {
      for (const body of bodies) {
        for (const [exchange, key] of [["", "bench.replies"], ["celery.ex", "ключ"]]) {
          const ours = encodePublish(channel, frameMax, exchange, key, props, body);
          assert.deepEqual(
            ours,
            amqplibFrames(channel, frameMax, exchange, key, props, body),
            `${channel} ${frameMax} ${JSON.stringify(props)} ${body.length} ${key}`,
          );
        }
      }
    }
  }
});

Deno.test("fast publish: what it cannot encode is left to amqplib", () => {
  const body = new Uint8Array(1);
  assert.equal(encodePublish(1, 4096, "", "q", { correlationId: "x".repeat(256) }, body), null);
  assert.equal(encodePublish(1, 4096, "", "é".repeat(128), {}, body), null);
  assert.equal(encodePublish(1, 4096, "", "q", { priority: 256 }, body), null);
  assert.equal(encodePublish(1, 4096, "", "q", { deliveryMode: 1.5 }, body), null);
  assert.equal(encodePublish(1, 8, "", "q", {}, body), null);
  assert.notEqual(encodePublish(1, 4096, "", "q", { correlationId: "x".repeat(255) }, body), null);
});

Deno.test("fast publish: only messages without headers and with the four properties", () => {
  const base = { body: new Uint8Array(), contentType: "text/plain", contentEncoding: "utf-8" };
  assert.deepEqual(
    simpleProperties({
      ...base,
      headers: {},
      properties: { correlation_id: "c", reply_to: "r", delivery_mode: 2, priority: 3 },
    }),
    {
      contentType: "text/plain",
      contentEncoding: "utf-8",
      correlationId: "c",
      replyTo: "r",
      deliveryMode: 2,
      priority: 3,
    },
  );
  assert.equal(simpleProperties({ ...base, headers: { a: 1 }, properties: {} }), null);
  assert.equal(simpleProperties({ ...base, headers: {}, properties: { expiration: "5" } }), null);
});

Deno.test("fast publish: RabbitMQ confirms and delivers it; a closed channel throws as amqplib", async () => {
  const conn = await amqp.connect(RABBITMQ_URL);
  try {
    const ch = await conn.createConfirmChannel();
    const queue = `celeriac-fast-publish-${crypto.randomUUID()}`;
    await ch.assertQueue(queue, { exclusive: true });
    const big = Uint8Array.from({ length: 300_000 }, (_, i) => i % 253);
    const sent: [Uint8Array, SimpleProperties][] = [
      [new TextEncoder().encode('{"result": 1}'), {
        contentType: "application/json",
        contentEncoding: "utf-8",
        deliveryMode: 1,
        priority: 0,
        correlationId: "t1",
      }],
      [big, { deliveryMode: 2, replyTo: "r" }],
      [new Uint8Array(), { correlationId: "empty" }],
    ];
    const confirms = sent.map(([body, props]) =>
      new Promise<unknown>((resolve) => publishSimple(ch, "", queue, body, props, resolve))
    );
    assert.deepEqual(await Promise.all(confirms), [null, null, null]);
    for (const [body, props] of sent) {
      const got = await ch.get(queue, { noAck: true });
      assert.ok(got);
      assert.deepEqual(new Uint8Array(got.content), body);
      for (const [k, v] of Object.entries(props)) {
        assert.equal((got.properties as unknown as Record<string, unknown>)[k], v, k);
      }
      assert.deepEqual(got.properties.headers, {});
    }
    await ch.close();
    assert.throws(
      () => publishSimple(ch, "", queue, new Uint8Array(1), {}, () => {}),
      { name: "IllegalOperationError" },
    );
  } finally {
    await conn.close();
  }
});
