/**
 * A queue Celeriac consumes outside the task queues, deleted under it:
 * RabbitMQ cancels the consumer (amqplib hands `null` to the callback).
 * The worker's pidbox queue is declared and consumed again, so pings are
 * answered again; an rpc:// client's waits under way end with a
 * `ResultConnectionLostError` and its reply queue is consumed again, so
 * the next task's result comes back. Each logs a warning.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { ResultConnectionLostError } from "../mod.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { createVhost, deleteQueue, listQueues } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";
import { withWorker } from "./helpers/worker.ts";

const ignore = WITHOUT_RABBITMQ;
const vhost = ignore ? null : await createVhost("cancel");
const AMQP = { broker: vhost?.url() ?? "", backend: "rpc://" };

Deno.test(
  { name: "consumer cancel: a deleted pidbox queue is consumed again", ignore },
  async () => {
    const records = await captureLogs("warning");
    try {
      await withWorker(AMQP, {}, async (client) => {
        assert.equal((await client.control.ping({ timeout: 2 })).length, 1, "answers before");
        const pidbox = (await listQueues(vhost!.name)).map((q) => q.name)
          .filter((n) => n.endsWith(".celery.pidbox"));
        assert.equal(pidbox.length, 1, `pidbox queues: ${pidbox}`);
        await deleteQueue(vhost!.name, pidbox[0]);
        // Before: no ping was ever answered again (nothing consumed the queue, none declared it).
        let replies = 0;
        for (let i = 0; i < 10 && replies === 0; i++) {
          replies = (await client.control.ping({ timeout: 2 })).length;
        }
        assert.equal(replies, 1, "answers after the deletion");
      });
      const warned = records.map(logLine).filter((l) => l.includes("cancelled the consumer"));
      assert.equal(warned.length, 1, warned.join("\n"));
      assert.match(warned[0], /^warning .*\.celery\.pidbox.*declaring it again/);
    } finally {
      await reset();
    }
  },
);

Deno.test({
  name: "consumer cancel: a deleted rpc reply queue ends the waits and is consumed again",
  ignore,
}, async () => {
  const records = await captureLogs("warning");
  try {
    await withWorker(AMQP, {}, async (client, worker) => {
      assert.equal(await (await client.sendTask<number>("t.add", [1, 1])).get(), 2);
      const slow = await client.sendTask("t.slow", [1500]);
      const wait = slow.get({ timeout: 60_000 }).then(() => null, (e: unknown) => e);
      while (worker.stats.received < 2) await new Promise((ok) => setTimeout(ok, 20));
      await deleteQueue(vhost!.name, client.oid);
      // Before: this wait ran out its timeout (TimeoutError), the reply being dropped or
      // left in a queue nobody consumed.
      const err = await wait;
      assert.ok(err instanceof ResultConnectionLostError, String(err));
      assert.match(err.message, /cancelled the consumer of reply queue/);
      // Before: timed out too, though the worker ran it.
      assert.equal(
        await (await client.sendTask<number>("t.add", [2, 3])).get({ timeout: 60_000 }),
        5,
      );
    });
    const warned = records.map(logLine).filter((l) => l.includes("cancelled the consumer"));
    assert.equal(warned.length, 1, warned.join("\n"));
    assert.match(warned[0], /^warning .*reply queue/);
  } finally {
    await reset();
  }
});

Deno.test({ name: "consumer cancel: clean up the test vhost", ignore }, async () => {
  await vhost!.remove();
});
