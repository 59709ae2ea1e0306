/**
 * Interop with real Python Celery 5.2.6 over RabbitMQ: a Celeriac client
 * with a Python worker (Redis results), and Python's remote control
 * (`celery inspect ping`) answered by a Celeriac worker.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { celeryWorker, PYTHON } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { REDIS_URL } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";

const ignore = WITHOUT_RABBITMQ || WITHOUT_CELERY;
const vhost = ignore ? null : await createVhost("interop");
/** The vhost name has no characters to escape, so Python and Celeriac read it alike. */
const BROKER = `amqp://guest:guest@127.0.0.1:5672/${vhost?.name}`;

Deno.test({
  name: "amqp interop: a Celeriac client's tasks run on a Python worker, results in Redis",
  ignore,
}, async () => {
  const queue = `interop-${crypto.randomUUID().slice(0, 8)}`;
  const py = await celeryWorker(["-P", "solo", "-Q", queue], {
    CELERY_BROKER_URL: BROKER,
    CELERY_RESULT_BACKEND: REDIS_URL,
    INTEROP_QUEUE: queue,
  });
  const app = new Celery({ broker: BROKER, backend: REDIS_URL, defaultQueue: queue });
  try {
    const mul = await app.sendTask("py.mul", [6, 7], { timeLimit: 30, softTimeLimit: 20 });
    assert.equal(await mul.get({ timeout: 15_000 }), 42);
    const echo = await app.sendTask("py.echo", [1, "two", null], {
      kwargs: { big: 2 ** 40, ratio: 0.25, flag: true },
      priority: 5,
    });
    assert.deepEqual(await echo.get({ timeout: 15_000 }), {
      args: [1, "two", null],
      kwargs: { big: 2 ** 40, ratio: 0.25, flag: true },
    });
  } finally {
    await app.close();
    await py.stop();
  }
});

Deno.test({
  name: "amqp interop: Python's `celery inspect ping` is answered by a Celeriac worker",
  ignore,
}, async () => {
  const queue = `interop-ping-${crypto.randomUUID().slice(0, 8)}`;
  const app = new Celery({ broker: BROKER, backend: null, defaultQueue: queue });
  app.task("tests.noop", () => null);
  const worker = new Worker({ app, pool: "inline", concurrency: 1 });
  await worker.start();
  try {
    const out = await new Deno.Command(PYTHON, {
      args: ["-m", "celery", "-b", BROKER, "inspect", "ping", "-t", "3", "-j"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, `${text}\n${new TextDecoder().decode(out.stderr)}`);
    assert.deepEqual(JSON.parse(text), { [worker.hostname]: { ok: "pong" } });
  } finally {
    await worker.stop();
    await app.close();
  }
});

Deno.test({ name: "amqp interop: clean up the test vhost", ignore }, async () => {
  await vhost!.remove();
});
