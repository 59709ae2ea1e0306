/**
 * rpc:// results in flight on the worker's shared confirm channel when
 * RabbitMQ closes it for one result over its 128 MiB `max_message_size`:
 * each of the others reaches the reply queue exactly once (those written
 * before the refused one were routed; only those after it are sent again),
 * and the refused one gets its FAILURE.
 *
 * The results before the big one must still be unconfirmed when RabbitMQ
 * closes the channel: they are persistent, to a durable reply queue
 * declared beforehand (RabbitMQ confirms them once on disk), many of them,
 * written in the same store as the big one (one write).
 */

import assert from "node:assert/strict";
import amqp from "amqplib";
import { openRpcBackend } from "../src/backend/rpc.ts";
import type { StoreEntry } from "../src/backend/port.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { storeResults } from "../src/worker/store_results.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ignore = WITHOUT_RABBITMQ;
const vhost = ignore ? null : await createVhost("rpcledger");
/** Just over RabbitMQ's default max_message_size (134,217,728 bytes) once JSON-encoded. */
const BIG = 129 * 2 ** 20;
/** Small results written before the big one, and after it. */
const BEFORE = 20_000;
const AFTER = 200;

/** A SUCCESS result for `replyTo`. */
function entry(taskId: string, result: unknown, replyTo: string): StoreEntry {
  return {
    taskId,
    status: "SUCCESS",
    meta: encodeResultMeta({ taskId, status: "SUCCESS", result }),
    replyTo,
  };
}

Deno.test(
  { name: "rpc ledger: results in flight with a refused one arrive once", ignore },
  async () => {
    const replyTo = `rpcledger-${crypto.randomUUID()}`;
    const conn = await amqp.connect(vhost!.url());
    const backend = await openRpcBackend("rpc://", { brokerUrl: vhost!.url(), persistent: true });
    try {
      const ch = await conn.createChannel();
      // Durable: RabbitMQ confirms a persistent result once it is on disk, so many are unconfirmed
      // when the big one arrives (the sender uses a reply queue declared otherwise as it is).
      await ch.assertQueue(replyTo, { durable: true });
      // Declares the reply queue (for the sender) and opens its channel: the next store is one write.
      await storeResults(backend, [entry("warm", 0, replyTo)]);
      const before = Array.from({ length: BEFORE }, (_, i) => entry(`a${i}`, i, replyTo));
      const big = entry("big", "x".repeat(BIG), replyTo);
      const after = Array.from({ length: AFTER }, (_, i) => entry(`b${i}`, i, replyTo));
      await storeResults(backend, [...before, big, ...after]);
      const seen = new Map<string, number>();
      let failure = "";
      while (true) {
        const m = await ch.get(replyTo, { noAck: true });
        if (m === false) break;
        const meta = JSON.parse(m.content.toString());
        seen.set(meta.task_id, (seen.get(meta.task_id) ?? 0) + 1);
        if (meta.task_id === "big") failure = String(meta.result?.exc_message);
      }
      const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
      // Before: every result unconfirmed when RabbitMQ closed the channel was sent again alone,
      // those it had routed before the big one included: they arrived twice.
      assert.deepEqual(twice, []);
      assert.equal(seen.size, 1 + BEFORE + 1 + AFTER);
      assert.match(failure, /message size \d+ is larger than configured max size/);
    } finally {
      await backend.close();
      await conn.close();
    }
  },
);

Deno.test({ name: "rpc ledger: clean up the test vhost", ignore }, async () => {
  await vhost!.remove();
});
