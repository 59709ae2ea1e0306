/**
 * A worker runs a task whose body is lzma-compressed (kombu's `lzma`, made
 * by Python's `lzma.compress`: tests/fixtures/xz/vectors.json), and parks
 * one whose xz body is corrupt: the caller gets a ProtocolError naming the
 * compression and why, the other tasks go on, and the parked message is
 * kept whole (requeued, its body is the bytes sent). On Redis, the KV broker
 * and RabbitMQ (a vhost of its own).
 */

import assert from "node:assert/strict";
import { type Celery, TaskError } from "../mod.ts";
import { openBroker } from "../protocol.ts";
import { compressedAddMessage } from "./helpers/compressed.ts";
import { redisKvAndRabbitMq, withWorker } from "./helpers/worker.ts";

interface Vector {
  name: string;
  xz_b64: string;
}

const vectors = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/xz/vectors.json", import.meta.url)),
) as { valid: Vector[]; corrupt: Vector[] };
const vector = (list: Vector[], name: string) =>
  Uint8Array.fromBase64(list.find((v) => v.name === name)!.xz_b64);
/** `[[1, 2], {}, {...}]` as Python's lzma.compress writes it. */
const GOOD = vector(vectors.valid, "default");
/** The same with one bit of its CRC64 flipped. */
const BAD_CRC = vector(vectors.corrupt, "bad_crc64");

// Results in Redis (under the prefix cleaned up) for RabbitMQ: the message is published by hand.
const { all, transports, cleanup } = await redisKvAndRabbitMq("lzma");

async function publishLzma(client: Celery, queue: string, id: string, body: Uint8Array) {
  const message = compressedAddMessage(client, id, "application/x-lzma", body);
  await (await client.broker()).publish(message, { routingKey: queue });
}

for (const t of all) {
  Deno.test({
    name: `worker on ${t.name}: an lzma body runs, a corrupt one is parked with a ProtocolError`,
    ignore: t.ignore,
  }, async () => {
    const queue = `wq-lzma-${crypto.randomUUID().slice(0, 8)}`;
    const badId = crypto.randomUUID();
    await withWorker(t, {}, async (client) => {
      const goodId = crypto.randomUUID();
      await publishLzma(client, queue, badId, BAD_CRC);
      await publishLzma(client, queue, goodId, GOOD);
      assert.equal(await client.asyncResult(goodId).get({ timeout: 10_000 }), 3);
      await assert.rejects(client.asyncResult(badId).get({ timeout: 10_000 }), (err: unknown) => {
        assert.ok(err instanceof TaskError);
        assert.equal(err.excType, "ProtocolError");
        assert.match(
          String(err.excMessage[0]),
          /Corrupt application\/x-lzma body: corrupt data or a failed integrity check/,
        );
        return true;
      });
      const after = await client.sendTask<number>("t.add", [20, 22]);
      assert.equal(await after.get({ timeout: 10_000 }), 42, "the worker goes on");
      const parked = await (await client.broker()).listParked({ limit: 1000 });
      const mine = parked.filter((p) => p.taskId === badId);
      assert.equal(mine.length, 1);
      assert.match(mine[0].reason, /Corrupt application\/x-lzma body/);
    }, queue);
    // Nothing lost: requeued, the parked message is the one sent, byte for byte.
    const broker = await openBroker(t.broker);
    try {
      assert.ok(await broker.requeueParked({ limit: 1000 }) >= 1);
      const taken = await broker.take([queue], { max: 10, signal: AbortSignal.timeout(5_000) });
      const back = taken.find((d) => d.headers.id === badId);
      assert.ok(back, "the parked message is back in its queue");
      assert.equal(back.headers.compression, "application/x-lzma");
      assert.deepEqual(back.body, BAD_CRC);
      await broker.ack(taken);
    } finally {
      await broker.close();
    }
  });
}

Deno.test("worker lzma: a sandboxed Web Worker (taskPermissions none) decodes it too", async () => {
  // Its codecs are loaded before it gives up read and import access.
  const kv = transports.find((t) => t.name === "kv")!;
  await withWorker(kv, { taskPermissions: "none" }, async (client, _worker, queue) => {
    const id = crypto.randomUUID();
    await publishLzma(client, queue, id, GOOD);
    assert.equal(await client.asyncResult(id).get({ timeout: 10_000 }), 3);
  });
});

Deno.test({ name: "worker lzma: cleanup", sanitizeResources: false }, async () => {
  await cleanup();
});
