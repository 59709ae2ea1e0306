import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "amqplib";
import { createRequire } from "node:module";
import {
  encodePublish,
  publishSimple,
  publishSimpleBatch,
  type SimpleProperties,
  simpleProperties,
  type SimplePublish,
} from "../src/broker/amqp_fast_publish.ts";
import { RABBITMQ_URL } from "./helpers/rabbitmq.ts";

// amqplib's encoders (not exported: loaded by path, next to its entry point).
const require = createRequire(import.meta.url);
const lib = (name: string) => require(require.resolve("amqplib").replace(/[^/]+$/, `lib/${name}`));
const Args = lib("api_args.js");
const defs = lib("defs.js");
const frame = lib("frame.js");

/** Counts the writes to `ch`'s connection socket from now until `restore()`. */
function countSocketWrites(ch: amqp.ConfirmChannel): { writes: number; restore(): void } {
  const stream = (ch as unknown as { connection: { stream: { write(b: Uint8Array): boolean } } })
    .connection.stream;
  const write = stream.write;
  const counter = {
    writes: 0,
    restore() {
      stream.write = write;
    },
  };
  stream.write = (b: Uint8Array) => {
    counter.writes++;
    return write.call(stream, b);
  };
  return counter;
}

/** A new exclusive queue on `ch` that refuses publishes past `max` messages. */
async function cappedQueue(ch: amqp.ConfirmChannel, max: number): Promise<string> {
  const queue = `celeriac-fast-publish-${crypto.randomUUID()}`;
  await ch.assertQueue(queue, {
    exclusive: true,
    arguments: { "x-max-length": max, "x-overflow": "reject-publish" },
  });
  return queue;
}

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

Deno.test("fast publish: on a connection that is closing it throws as amqplib and writes nothing", async () => {
  const conn = await amqp.connect(RABBITMQ_URL);
  const ch = await conn.createConfirmChannel();
  const closed = conn.close();
  const socket = countSocketWrites(ch);
  try {
    const confirmed: unknown[] = [];
    assert.throws(
      () => publishSimple(ch, "", "nowhere", new Uint8Array(1), {}, (e) => confirmed.push(e)),
      { name: "IllegalOperationError", message: /Connection closing/ },
    );
    assert.equal(socket.writes, 0);
    assert.deepEqual(confirmed, []);
  } finally {
    socket.restore();
    await closed;
  }
});

Deno.test("fast publish: mixed with amqplib's publishes on one channel, frames and confirms keep the publish order", async () => {
  // Small frames: amqplib's big messages queue several frames in the channel's buffer.
  const conn = await amqp.connect(`${RABBITMQ_URL}?frameMax=4096`);
  try {
    const ch = await conn.createConfirmChannel();
    // Past 200 messages the queue refuses: the confirms say which callback got which tag.
    const queue = await cappedQueue(ch, 200);
    const n = 600;
    const results: Promise<boolean>[] = [];
    for (let i = 0; i < n; i++) {
      const body = Buffer.alloc(i % 3 === 0 ? 20_000 + i : 10 + (i % 50), i % 256);
      body.writeUInt32BE(i, 0);
      results.push(
        new Promise((resolve) => {
          const cb = (err: unknown) => resolve(err === null);
          if (i % 3 === 0) ch.publish("", queue, body, { headers: { i } }, cb);
          else publishSimple(ch, "", queue, body, { correlationId: `c${i}` }, cb);
        }),
      );
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 0));
    }
    const acked = await Promise.all(results);
    assert.deepEqual(acked, Array.from({ length: n }, (_, i) => i < 200));
    for (let i = 0; i < 200; i++) {
      const got = await ch.get(queue, { noAck: true });
      assert.ok(got);
      assert.equal(got.content.readUInt32BE(0), i);
      assert.equal(got.content.length, i % 3 === 0 ? 20_000 + i : 10 + (i % 50));
      if (i % 3 !== 0) assert.equal(got.properties.correlationId, `c${i}`);
    }
  } finally {
    await conn.close();
  }
});

Deno.test("fast publish batch: one write, confirms by index in publish order, amqplib's publishes between", async () => {
  const conn = await amqp.connect(`${RABBITMQ_URL}?frameMax=4096`);
  try {
    const ch = await conn.createConfirmChannel();
    // Past 100 messages the queue refuses: the confirms say which index got which tag.
    const queue = await cappedQueue(ch, 100);
    // A batch goes to the socket, or behind amqplib's frames in the channel's buffer: one write.
    const internals = ch as unknown as {
      ch: number;
      connection: {
        stream: { write(b: Uint8Array): boolean };
        channels: { buffer: { write(b: Uint8Array): boolean } }[];
      };
    };
    const sinks = [internals.connection.stream, internals.connection.channels[internals.ch].buffer];
    const writers = sinks.map((sink) => sink.write);
    let writes = 0;
    sinks.forEach((sink, i) => {
      sink.write = (b: Uint8Array) => {
        writes++;
        return writers[i].call(sink, b);
      };
    });
    const results: Promise<boolean>[] = [];
    let next = 0;
    let batches = 0;
    while (next < 300) {
      const size = 1 + (batches % 7);
      const publishes: SimplePublish[] = [];
      const oks: ((ok: boolean) => void)[] = [];
      for (let k = 0; k < size; k++, next++) {
        const body = Buffer.alloc(k === 1 ? 9_000 : 10 + (next % 50), next % 256);
        body.writeUInt32BE(next, 0);
        publishes.push({ routingKey: queue, body, props: { correlationId: `c${next}` } });
        results.push(new Promise((resolve) => oks.push(resolve)));
      }
      writes = 0;
      assert.ok(publishSimpleBatch(ch, "", publishes, (i, err) => oks[i](err === null)));
      assert.equal(writes, 1);
      batches++;
      const body = Buffer.alloc(30_000, 7);
      body.writeUInt32BE(next, 0);
      results.push(
        new Promise((resolve) => {
          ch.publish("", queue, body, { headers: { i: next } }, (err) => resolve(err === null));
        }),
      );
      next++;
      if (batches % 10 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    sinks.forEach((sink, i) => sink.write = writers[i]);
    assert.deepEqual(await Promise.all(results), Array.from({ length: next }, (_, i) => i < 100));
    for (let i = 0; i < 100; i++) {
      const got = await ch.get(queue, { noAck: true });
      assert.ok(got);
      assert.equal(got.content.readUInt32BE(0), i);
      if (!got.properties.headers?.i) assert.equal(got.properties.correlationId, `c${i}`);
    }
  } finally {
    await conn.close();
  }
});

Deno.test("fast publish batch: nothing is sent when one cannot be encoded or the connection is closing", async () => {
  const conn = await amqp.connect(RABBITMQ_URL);
  const ch = await conn.createConfirmChannel();
  const socket = countSocketWrites(ch);
  const confirmed: unknown[] = [];
  const ok: SimplePublish = { routingKey: "nowhere", body: new Uint8Array(1), props: {} };
  try {
    const tooLong: SimplePublish = { ...ok, props: { correlationId: "x".repeat(256) } };
    assert.equal(publishSimpleBatch(ch, "", [ok, tooLong], (_, e) => confirmed.push(e)), false);
    assert.equal(socket.writes, 0);
    const closed = conn.close();
    const closing = socket.writes;
    assert.equal(publishSimpleBatch(ch, "", [ok], (_, e) => confirmed.push(e)), false);
    assert.equal(socket.writes, closing);
    assert.deepEqual(confirmed, []);
    socket.restore();
    await closed;
  } finally {
    socket.restore();
  }
});
