/**
 * A real Python Celery 5.2.6 client sends tasks with compression="lzma"
 * (kombu's `application/x-lzma`, an .xz body) to a Celeriac worker, on Redis
 * and on RabbitMQ (a vhost of its own), and gets the results: json and
 * msgpack bodies, kombu's `xz` alias, a body over the decoder's 64 KiB
 * buffer, a task that retries. pickle stays refused (ContentDisallowed) when
 * it is compressed.
 */

import assert from "node:assert/strict";
import {
  interopWorker,
  type PyOutcome,
  pythonCalls as callFromPython,
  pythonEnv,
} from "./helpers/interop.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";

const prefix = uniquePrefix("interop-lzma");
const vhost = WITHOUT_CELERY || WITHOUT_RABBITMQ ? null : await createVhost("lzma");
const taskIds: string[] = [];

/** About 80 kB as JSON (it goes through argv, 128 kB at most): over one 64 KiB decoder output buffer. */
const LONG = Array.from({ length: 3_500 }, (_, i) => `${i} h\u00e9llo \u2603`).join("|");

const brokers = [
  {
    name: "Redis",
    broker: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`,
    keyPrefix: prefix as string | undefined,
    pythonBroker: REDIS_URL,
    ignore: WITHOUT_CELERY,
  },
  {
    name: "RabbitMQ",
    // The vhost name has no characters to escape, so Python and Celeriac read it alike.
    broker: `amqp://guest:guest@127.0.0.1:5672/${vhost?.name}`,
    keyPrefix: undefined,
    pythonBroker: `amqp://guest:guest@127.0.0.1:5672/${vhost?.name}`,
    ignore: vhost === null,
  },
];

for (const b of brokers) {
  Deno.test({
    name:
      `interop on ${b.name}: a Python client's compression="lzma" tasks run on a Celeriac worker`,
    ignore: b.ignore,
  }, async () => {
    const queue = `q-lzma-${crypto.randomUUID().slice(0, 8)}`;
    const worker = await interopWorker({ broker: b.broker, backend: REDIS_URL }, queue);
    let out: PyOutcome[];
    try {
      out = await callFromPython(
        pythonEnv({ broker: b.pythonBroker, backend: REDIS_URL }, queue, b.keyPrefix),
        [
          { task: "tasks.add", args: [7, 8], options: { compression: "lzma" } },
          { task: "tasks.echo", args: [LONG], options: { compression: "lzma" } },
          { task: "tasks.mul", kwargs: { x: 6, y: 7 }, options: { compression: "xz" } },
          {
            task: "tasks.add",
            args: [1, 2],
            options: { compression: "lzma", serializer: "msgpack", priority: 5 },
          },
          {
            task: "tasks.add",
            args: [1, 1],
            options: { compression: "lzma", serializer: "pickle" },
          },
          { task: "tasks.retry_twice", args: [5], options: { compression: "lzma" } },
        ],
      );
      taskIds.push(...out.map((o) => o.id));
    } finally {
      await worker.stop();
    }
    // Before: each was parked with "Unsupported compression application/x-lzma".
    assert.equal(out[0].ok, 15);
    assert.deepEqual(out[1].ok, [LONG]);
    assert.equal(out[2].ok, 42);
    assert.equal(out[3].ok, 3);
    assert.equal(out[4].error?.type, "ContentDisallowed");
    assert.equal(out[4].error?.module, "kombu.exceptions");
    assert.match(String(out[4].error?.args[0]), /application\/x-python-serialize/);
    // Its retries are sent by the worker (uncompressed, as for bzip2) and run.
    assert.deepEqual(out[5].ok, { n: 5, retries: 2 });
    assert.doesNotMatch(worker.output, /Unsupported compression|Corrupt application/);
  });
}

Deno.test({ name: "interop lzma: cleanup", ignore: WITHOUT_CELERY }, async () => {
  await deleteResults(taskIds);
  await deleteKeys(prefix);
  await vhost?.remove();
});
