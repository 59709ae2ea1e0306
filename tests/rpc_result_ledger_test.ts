/**
 * rpc:// results in flight on the worker's shared confirm channel when
 * RabbitMQ closes it for one result over its 128 MiB `max_message_size`:
 * each of the others reaches the reply queue exactly once (those written
 * before the refused one were routed; only those after it are sent again),
 * and the refused one gets its FAILURE.
 *
 * The results before the big one must still be unconfirmed when RabbitMQ
 * closes the channel, and RabbitMQ confirms them long before it has read
 * 128 MiB (measured: 20,000 persistent results to a durable queue, all
 * confirmed before the close). So the reply queue's process is suspended
 * (`sys:suspend` through `rabbitmqctl eval`, on this test's vhost only)
 * while they are in flight: routed, not confirmed. It is resumed once
 * RabbitMQ closed the channel, and by the server itself after
 * SUSPENDED_AT_MOST if the test is killed before.
 *
 * Two big results of one size: RabbitMQ refuses the first and discards
 * everything after it, so both get their FAILURE and every small result
 * between them arrives once.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import amqp from "amqplib";
import { openRpcBackend } from "../src/backend/rpc.ts";
import { storeResults } from "../src/worker/store_results.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { success } from "./helpers/rpc_entries.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";
import { until } from "./helpers/waits.ts";

const ignore = WITHOUT_RABBITMQ;
const vhost = ignore ? null : await createVhost("rpcledger");
/** Just over RabbitMQ's default max_message_size (134,217,728 bytes) once JSON-encoded. */
const BIG = 129 * 2 ** 20;
/** Small results written before the big one, and after it (under RabbitMQ's credit of 400). */
const SMALL = 100;

/**
 * How long the reply queue stays suspended at most (the server resumes it by itself after): the
 * close comes within seconds; the wait for it gives up a little before.
 */
const SUSPENDED_AT_MOST = 60_000;

/** Each result's task id and status as the reply queue holds them, in order. */
async function drain(ch: amqp.Channel, replyTo: string): Promise<[string, string, string][]> {
  const out: [string, string, string][] = [];
  while (true) {
    const m = await ch.get(replyTo, { noAck: true });
    if (m === false) return out;
    const meta = JSON.parse(m.content.toString());
    out.push([meta.task_id, meta.status, String(meta.result?.exc_message ?? "")]);
  }
}

Deno.test(
  { name: "rpc ledger: results in flight with a refused one arrive once", ignore },
  async () => {
    const replyTo = `rpcledger-${crypto.randomUUID()}`;
    const records = await captureLogs("debug", ["celeriac", "broker", "amqp"]);
    const conn = await amqp.connect(vhost!.url());
    const backend = await openRpcBackend("rpc://", { brokerUrl: vhost!.url() });
    let suspended = false;
    try {
      const ch = await conn.createChannel();
      // Declares the reply queue (for the sender) and opens its channel: the next store is one write.
      await storeResults(backend, [success("warm", 0, replyTo)]);
      await vhost!.suspendQueue(replyTo, SUSPENDED_AT_MOST);
      suspended = true;
      const before = Array.from({ length: SMALL }, (_, i) => success(`a${i}`, i, replyTo));
      const big = success("big", "x".repeat(BIG), replyTo);
      const after = Array.from({ length: SMALL }, (_, i) => success(`b${i}`, i, replyTo));
      const stored = storeResults(backend, [...before, big, ...after]);
      await until(
        "RabbitMQ closing the result channel",
        () => records.map(logLine).some((l) => l.includes("AMQP channel closed by the server")),
        SUSPENDED_AT_MOST - 10_000,
      );
      await vhost!.resumeQueue(replyTo);
      suspended = false;
      await stored;
      const seen = new Map<string, number>();
      let failure = "";
      for (const [id, , exc] of await drain(ch, replyTo)) {
        seen.set(id, (seen.get(id) ?? 0) + 1);
        if (id === "big") failure = exc;
      }
      const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
      // Before: every result unconfirmed when RabbitMQ closed the channel was sent again alone,
      // those it had routed before the big one included: they arrived twice.
      assert.deepEqual(twice, []);
      assert.equal(seen.size, 1 + SMALL + 1 + SMALL);
      assert.match(failure, /message size \d+ is larger than configured max size/);
    } finally {
      if (suspended) await vhost!.resumeQueue(replyTo);
      await backend.close();
      await conn.close();
      await reset();
    }
  },
);

Deno.test(
  {
    name: "rpc ledger: two big results of one size are both refused, the rest arrive once",
    ignore,
  },
  async () => {
    const replyTo = `rpcledger-${crypto.randomUUID()}`;
    const conn = await amqp.connect(vhost!.url());
    const backend = await openRpcBackend("rpc://", { brokerUrl: vhost!.url() });
    try {
      const ch = await conn.createChannel();
      await storeResults(backend, [success("warm", 0, replyTo)]);
      const between = Array.from({ length: 10 }, (_, i) => success(`m${i}`, i, replyTo));
      await storeResults(backend, [
        success("c0", 0, replyTo),
        success("big1", "x".repeat(BIG), replyTo),
        ...between,
        success("big2", "y".repeat(BIG), replyTo),
        success("c1", 1, replyTo),
      ]);
      const seen = await drain(ch, replyTo);
      const ids = seen.map(([id]) => id).sort();
      // Before: every result from big1 to big2 was "unknown" (logged, not sent, no FAILURE):
      // only warm, c0 and c1 arrived.
      const expected = ["warm", "c0", "big1", ...between.map((e) => e.taskId), "big2", "c1"];
      assert.deepEqual(ids, expected.sort());
      for (const [id, status, exc] of seen) {
        if (!id.startsWith("big")) assert.equal(status, "SUCCESS", id);
        else {
          assert.equal(status, "FAILURE", id);
          assert.match(exc, /message size \d+ is larger than configured max size/);
        }
      }
    } finally {
      await backend.close();
      await conn.close();
    }
  },
);

Deno.test({ name: "rpc ledger: clean up the test vhost", ignore }, async () => {
  await vhost!.remove();
});
