/**
 * A Celeriac client calling tasks served by a Python Celery worker.
 *
 *   (cd examples/python && /usr/bin/python3 -m celery -A tasks worker -l INFO)   # the Python worker
 *
 * (a Python with Celery 5.2: Debian's /usr/bin/python3, after
 * `apt-get install python3-celery python3-redis python3-amqp python3-msgpack`), then from the
 * repository's root
 *   deno run --allow-net=127.0.0.1:6379 --allow-env examples/call_python.ts
 *
 * The Python worker consumes its own queue, `python` (PYTHON_QUEUE), so a
 * Celeriac worker on `celery` can run beside it.
 */
// deno-lint-ignore-file no-console

import { Celery, TaskError } from "../mod.ts";

const redis = "redis://127.0.0.1:6379/0";
const app = new Celery({
  broker: Deno.env.get("CELERY_BROKER_URL") ?? redis,
  backend: Deno.env.get("CELERY_RESULT_BACKEND") ?? redis,
});

// Typed handles to tasks that live in Python, sent to the queue its worker consumes.
const queue = Deno.env.get("PYTHON_QUEUE") ?? "python";
const mul = app.remoteTask<[x: number, y: number], number>("py.mul", { queue });
const withdraw = app.remoteTask<[balance: number, amount: number], number>("py.withdraw", {
  queue,
});

const product: number = await (await mul.delay(6, 7)).get({ timeout: 10_000 });
console.log(`py.mul(6, 7) = ${product}`);

const left = await (await withdraw.delay(100, 30)).get({ timeout: 10_000 });
console.log(`py.withdraw(100, 30) = ${left}`);

try {
  await (await withdraw.delay(10, 30)).get({ timeout: 10_000 });
} catch (err) {
  if (!(err instanceof TaskError)) throw err;
  // The Python exception arrives typed: class, module, arguments and traceback.
  console.log(
    `py.withdraw(10, 30) raised ${err.excModule}.${err.excType}${JSON.stringify(err.excMessage)}`,
  );
}

await app.close();
