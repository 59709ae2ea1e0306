// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/amqp_take.ts [N] [MAX]`: how fast `AmqpBroker.take()`
 * plus `ack()` drains a pre-filled queue (N messages, default 20000; takes
 * of at most MAX, default 64), on a RabbitMQ vhost of its own (created and
 * deleted with `rabbitmqctl`; server from `BENCH_AMQP`, default
 * `amqp://guest:guest@127.0.0.1:5672`).
 *
 * @module
 */

import { openAmqpBroker } from "../src/broker/amqp.ts";
import type { Message } from "../src/protocol/message.ts";
import { withVhost } from "./rabbitmq.ts";

const n = Number(Deno.args[0] ?? 20_000);
const max = Number(Deno.args[1] ?? 64);
const queue = "take-bench";

function message(i: number): Message {
  return {
    body: new TextEncoder().encode(JSON.stringify([[i], {}, {}])),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { task: "bench.noop", id: crypto.randomUUID() },
    properties: { delivery_mode: 2, priority: 0 },
  };
}

await withVhost("take", async (url) => {
  const broker = await openAmqpBroker(url);
  try {
    for (let sent = 0; sent < n; sent += 1000) {
      await Promise.all(
        Array.from(
          { length: Math.min(1000, n - sent) },
          (_, i) => broker.publish(message(sent + i), { routingKey: queue }),
        ),
      );
    }
    const start = performance.now();
    let taken = 0;
    let calls = 0;
    while (taken < n) {
      const got = await broker.take([queue], { max, signal: AbortSignal.timeout(5000) });
      if (got.length === 0) throw new Error(`take gave up after ${taken}/${n}`);
      calls++;
      taken += got.length;
      await broker.ack(got);
    }
    const seconds = (performance.now() - start) / 1000;
    console.log(
      `take+ack: ${n} messages in ${seconds.toFixed(2)} s = ${
        Math.round(n / seconds)
      } /s (max ${max}, ${calls} takes, ${(n / calls).toFixed(1)} per take)`,
    );
  } finally {
    await broker.close();
  }
});
