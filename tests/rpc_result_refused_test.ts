/**
 * A worker's rpc:// result RabbitMQ refuses (over its 128 MiB
 * `max_message_size`, which closes the shared confirm channel): that task
 * gets a FAILURE that fits, naming the size and RabbitMQ's reason, and the
 * results in flight with it on the same channel arrive as they were.
 */

import assert from "node:assert/strict";
import { Celery, TaskError } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ignore = WITHOUT_RABBITMQ;
const vhost = ignore ? null : await createVhost("rpcbig");
/** Just over RabbitMQ's default max_message_size (134,217,728 bytes) once JSON-encoded. */
const BIG = 129 * 2 ** 20;

Deno.test({ name: "rpc refused: an oversized result fails alone", ignore }, async () => {
  const app = new Celery({
    broker: vhost!.url(),
    backend: "rpc://",
    defaultQueue: `rpcbig-${crypto.randomUUID().slice(0, 8)}`,
  });
  const add = app.task("tests.add", async (a: number, b: number) => {
    await new Promise((r) => setTimeout(r, 1));
    return a + b;
  });
  const big = app.task("tests.big", () => "x".repeat(BIG));
  const worker = new Worker({ app, concurrency: 16, pool: "inline" });
  await worker.start();
  try {
    for (let round = 0; round < 3; round++) {
      const before = Array.from({ length: 20 }, (_, i) => add.delay(round, i));
      const huge = big.delay();
      const after = Array.from({ length: 20 }, (_, i) => add.delay(i, round));
      const sent = await Promise.all([...before, ...after]);
      const sums = await Promise.all(sent.map((r) => r.get({ timeout: 60_000 })));
      assert.deepEqual(sums, [
        ...Array.from({ length: 20 }, (_, i) => round + i),
        ...Array.from({ length: 20 }, (_, i) => i + round),
      ]);
      const hugeResult = await huge;
      const err = await hugeResult.get({ timeout: 60_000 }).then(() => null, (e: unknown) => e);
      // Before: the small results in flight with it were lost to a bare "channel closed" (stored
      // as FAILUREs in their place, or never sent), and its own FAILURE said only that.
      assert.ok(err instanceof TaskError, String(err));
      assert.equal(err.excType, "EncodeError");
      const text = String(err.excMessage[0]);
      assert.ok(text.includes(hugeResult.id), text);
      assert.match(text, /\(\d+ bytes of JSON\)/);
      assert.match(text, /message size \d+ is larger than configured max size/);
    }
  } finally {
    await worker.stop();
    await app.close();
  }
});

Deno.test({ name: "rpc refused: clean up the test vhost", ignore }, async () => {
  await vhost!.remove();
});
