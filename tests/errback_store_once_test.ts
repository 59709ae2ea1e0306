/**
 * A task that fails with an in-process (old-style) errback has its FAILURE
 * stored once, as Celery 5.2.6 stores it (then calls the errback): one
 * message in the caller's reply queue on rpc:// (RabbitMQ), one publish on
 * the Redis backend's channel, whose meta lists the children the task sent.
 * Real servers, both pools.
 */

import assert from "node:assert/strict";
import amqp from "amqplib";
import { Celery } from "../mod.ts";
import { encodeTaskMessage, type SignatureDict } from "../protocol.ts";
import { Worker } from "../src/worker/worker.ts";
import { app as ebApp, failAfterSend, old } from "./apps/errback_app.ts";
import { createVhost, type TestVhost } from "./helpers/rabbitmq.ts";
import { rawRedis, REDIS_URL, waitForList } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

const NEVER_CONSUMED = "eb-noop-never-consumed";
const APP_MODULE = new URL("./apps/errback_app.ts", import.meta.url).href;

/**
 * The rpc:// cases' virtual host, made by the first (each `rabbitmqctl` run
 * costs a second or more); its queues have unique names. The last test
 * removes it.
 */
let rpcVhost: Promise<TestVhost> | undefined;

/** Messages ready in `queue` of `vhost`, from a passive declare (exact at once). */
async function readyCount(vhost: TestVhost, queue: string): Promise<number> {
  const conn = await amqp.connect(vhost.url());
  try {
    const channel = await conn.createChannel();
    return (await channel.checkQueue(queue)).messageCount;
  } finally {
    await conn.close();
  }
}

for (const backend of ["rpc", "redis"] as const) {
  for (const pool of ["threads", "inline"] as const) {
    Deno.test({
      name: `errback store once (${backend}, ${pool} pool): one FAILURE, with the task's children`,
      ignore: WITHOUT_REDIS || (backend === "rpc" && WITHOUT_RABBITMQ),
      sanitizeOps: false,
      sanitizeResources: false,
    }, async () => {
      const queue = `ebq-${crypto.randomUUID().slice(0, 8)}`;
      const marker = `eb-marker-${crypto.randomUUID()}`;
      // rpc:// replies go through RabbitMQ; the errbacks' marker is in Redis either way.
      const vhost = backend === "rpc" ? await (rpcVhost ??= createVhost("ebonce")) : null;
      const broker = vhost ? vhost.url() : REDIS_URL;
      const backendUrl = vhost ? "rpc://" : REDIS_URL;
      ebApp.configure({ broker, backend: backendUrl, defaultQueue: queue });
      const client = vhost ? new Celery({ broker, backend: backendUrl }) : null;
      const worker = new Worker({
        app: ebApp,
        appModule: APP_MODULE,
        queues: [queue],
        concurrency: 1,
        pool,
      });
      const redis = await rawRedis();
      const sub = await rawRedis();
      const id = crypto.randomUUID();
      const replyTo = `ebr-${crypto.randomUUID()}`;
      const published: string[] = [];
      sub.on("message", (_channel: string, data: string) => published.push(data));
      await sub.subscribe(`celery-task-meta-${id}`);
      try {
        await worker.start();
        const sig = failAfterSend.s("on purpose").onError(old.s(marker)).set({ taskId: id });
        if (client) {
          // A reply queue nobody reads (a client consumes its own from its first send): the
          // worker declares it and it keeps every result sent for the task.
          const d = sig.toDict();
          await client.publish(
            encodeTaskMessage({
              task: d.task,
              id,
              args: d.args,
              kwargs: {},
              now: new Date(),
              origin: "test@local",
              replyTo,
              embed: { errbacks: d.options.link_error as SignatureDict[] },
            }),
            { exchange: "", routingKey: queue },
          );
        } else await sig.applyAsync();
        await waitForList(marker, 1, 20_000);
        // Whatever would be stored after the errback has had ample time to arrive.
        await new Promise((r) => setTimeout(r, 1_500));
        if (vhost) {
          // Nobody reads the caller's reply queue yet: every result sent for the task waits there.
          assert.equal(await readyCount(vhost, replyTo), 1, "results in the reply queue");
        } else {
          const metas = published.map((p) => JSON.parse(p));
          assert.equal(metas.length, 1, `FAILURE results stored: ${JSON.stringify(metas)}`);
          assert.equal(metas[0].status, "FAILURE");
          assert.equal(metas[0].children.length, 1, "the child the task sent is listed");
        }
        const marks = (await redis.lrange(marker, 0, -1)).map((m) => JSON.parse(m));
        assert.equal(marks.length, 1);
      } finally {
        await worker.stop();
        await client?.close();
        await ebApp.close();
        await sub.quit();
        await redis.del(marker, `celery-task-meta-${id}`, queue, NEVER_CONSUMED);
        await redis.quit();
      }
    });
  }
}

Deno.test({
  name: "errback store once: clean up the rpc cases' vhost",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  await (await rpcVhost)?.remove();
});
