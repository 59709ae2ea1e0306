// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/amqp_confirm_cost.ts`: what publisher confirms cost a
 * loop of single sends on RabbitMQ (workload C's "delay() loop"), on a
 * vhost of its own. Alternated, `--rounds` (4) times, `--tasks` (2000)
 * `bench.noop` sends each:
 *
 * - `celeriac`: `noop.delay()` awaited one at a time (each waits for its
 *   publisher confirm, as Celeriac always does);
 * - `celery`: Python Celery's `send_task` loop (bench/celery_client.py),
 *   kombu's default: no confirms, a publish is a socket write;
 * - `celery+confirm`: the same with `confirm_publish` (py-amqp then waits
 *   for each message's confirm);
 * - `amqplib+confirm` / `amqplib`: a bare amqplib loop, awaiting each
 *   confirm, or only a turn of the event loop after each `sendToQueue`
 *   (`setImmediate`, not `setTimeout(0)`: its 1 ms clamp made that loop
 *   449/s) on a channel without confirms.
 *
 * The queue is purged after each loop. Printed: each loop's rate per round
 * and the medians.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";
import { setImmediate } from "node:timers";
import amqp from "amqplib";
import { Celery } from "../mod.ts";
import { median, pythonClient } from "./common.ts";
import { createVhost } from "./rabbitmq.ts";
import { BENCH_QUEUE } from "./tasks.ts";

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      tasks: { type: "string", default: "2000" },
      rounds: { type: "string", default: "4" },
    },
  });
  const n = Number(values.tasks);
  const vhost = await createVhost("confirm");
  const conn = await amqp.connect(vhost.url, { noDelay: true });
  const admin = await conn.createChannel();
  const confirming = await conn.createConfirmChannel();
  const plain = await conn.createChannel();
  const client = new Celery({ broker: vhost.url, defaultQueue: BENCH_QUEUE });
  const noop = client.remoteTask<[], number>("bench.noop");
  const body = Buffer.from(JSON.stringify([[], {}, { callbacks: null, errbacks: null }]));
  const props = (id: string) => ({
    persistent: true,
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { lang: "py", task: "bench.noop", id, root_id: id },
    correlationId: id,
  });
  const env = { CELERY_BROKER_URL: vhost.url, CELERY_RESULT_BACKEND: "rpc://" };
  const timed = async (fn: () => Promise<void>) => {
    const start = performance.now();
    await fn();
    return (performance.now() - start) / 1000;
  };
  const loops: Record<string, () => Promise<number>> = {
    celeriac: () =>
      timed(async () => {
        for (let i = 0; i < n; i++) await noop.delay();
      }),
    celery: async () =>
      ((await pythonClient(["enqueue", String(n)], env)) as { seconds: number }).seconds,
    "celery+confirm": async () =>
      ((await pythonClient(["enqueue", String(n)], { ...env, BENCH_CONFIRM_PUBLISH: "1" })) as {
        seconds: number;
      }).seconds,
    "amqplib+confirm": () =>
      timed(async () => {
        for (let i = 0; i < n; i++) {
          const id = crypto.randomUUID();
          await new Promise<void>((ok, fail) =>
            confirming.sendToQueue(BENCH_QUEUE, body, props(id), (e) => e ? fail(e) : ok())
          );
        }
      }),
    amqplib: () =>
      timed(async () => {
        for (let i = 0; i < n; i++) {
          plain.sendToQueue(BENCH_QUEUE, body, props(crypto.randomUUID()));
          await new Promise((r) => setImmediate(r));
        }
      }),
  };
  const rates = new Map<string, number[]>(Object.keys(loops).map((k) => [k, []]));
  try {
    await admin.assertQueue(BENCH_QUEUE, { durable: true });
    await noop.delay(); // the client's connection and channel, before any timing
    for (let round = 1; round <= Number(values.rounds); round++) {
      const names = Object.keys(loops);
      if (round % 2 === 0) names.reverse();
      const line: string[] = [];
      for (const name of names) {
        await admin.purgeQueue(BENCH_QUEUE);
        const rate = n / await loops[name]();
        rates.get(name)!.push(rate);
        line.push(`${name} ${Math.round(rate)}/s`);
      }
      console.log(`round ${round}: ${line.join(", ")}`);
    }
    console.log(
      `medians: ${[...rates].map(([k, v]) => `${k} ${Math.round(median(v))}/s`).join(", ")}`,
    );
  } finally {
    await client.close();
    await conn.close();
    await vhost.remove();
  }
}

if (import.meta.main) await main();
