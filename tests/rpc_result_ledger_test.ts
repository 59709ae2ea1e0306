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
 * RabbitMQ closed the channel.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import amqp from "amqplib";
import { openRpcBackend } from "../src/backend/rpc.ts";
import { storeResults } from "../src/worker/store_results.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { createVhost, rabbitmqctl } from "./helpers/rabbitmq.ts";
import { success } from "./helpers/rpc_entries.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";
import { until } from "./helpers/waits.ts";

const ignore = WITHOUT_RABBITMQ;
const vhost = ignore ? null : await createVhost("rpcledger");
/** Just over RabbitMQ's default max_message_size (134,217,728 bytes) once JSON-encoded. */
const BIG = 129 * 2 ** 20;
/** Small results written before the big one, and after it (under RabbitMQ's credit of 400). */
const SMALL = 100;

/** Suspend (`sys:suspend`) or resume the process of `queue` in the test's vhost. */
async function queueProcess(queue: string, call: "suspend" | "resume"): Promise<void> {
  const bin = (s: string) => `<<"${s}">>`;
  await rabbitmqctl(
    "eval",
    `{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(${bin(vhost!.name)}, queue, ${bin(queue)})), ` +
      `sys:${call}(amqqueue:get_pid(Q)).`,
  );
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
      await queueProcess(replyTo, "suspend");
      suspended = true;
      const before = Array.from({ length: SMALL }, (_, i) => success(`a${i}`, i, replyTo));
      const big = success("big", "x".repeat(BIG), replyTo);
      const after = Array.from({ length: SMALL }, (_, i) => success(`b${i}`, i, replyTo));
      const stored = storeResults(backend, [...before, big, ...after]);
      await until(
        "RabbitMQ closing the result channel",
        () => records.map(logLine).some((l) => l.includes("AMQP channel closed by the server")),
        120_000,
      );
      await queueProcess(replyTo, "resume");
      suspended = false;
      await stored;
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
      assert.equal(seen.size, 1 + SMALL + 1 + SMALL);
      assert.match(failure, /message size \d+ is larger than configured max size/);
    } finally {
      if (suspended) await queueProcess(replyTo, "resume");
      await backend.close();
      await conn.close();
      await reset();
    }
  },
);

Deno.test({ name: "rpc ledger: clean up the test vhost", ignore }, async () => {
  await vhost!.remove();
});
