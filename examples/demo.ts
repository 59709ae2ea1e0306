/**
 * The Celeriac demo: a worker and a client in one process, on the embedded
 * Deno KV store (nothing to install, no server).
 *
 *   deno task demo
 *
 * The worker runs the tasks of ./tasks.ts in a pool of two Web Workers; the
 * client sends tasks and prints their results.
 */
// deno-lint-ignore-file no-console

import { TaskError } from "../mod.ts";
import { Worker } from "../worker.ts";
import { add, app, echo, fail, mul, sleep } from "./tasks.ts";

app.configure({ broker: "kv://:memory:" });
const worker = new Worker({
  app,
  appModule: new URL("./tasks.ts", import.meta.url).href,
  concurrency: 2,
});
await worker.start();
console.log(
  `worker ${worker.hostname} consuming ${worker.queues.join(", ")} on ${app.config.broker}`,
);

const sum = await add.delay(2, 3);
console.log(`add(2, 3)            = ${await sum.get({ timeout: 10_000 })}   (task ${sum.id})`);

const product = await app.sendTask<number>(mul.name, [], { kwargs: { x: 6, y: 7 } });
console.log(`mul(x=6, y=7)        = ${await product.get({ timeout: 10_000 })}`);

const echoed = await echo.delay(
  { when: new Date("2030-01-01T00:00:00Z") },
  2n ** 64n,
  "h\u00e9llo",
);
console.log(`echo(...)            = ${Deno.inspect(await echoed.get({ timeout: 10_000 }))}`);

const slept = await sleep.applyAsync([200], { countdown: 0.5 });
console.log(`sleep(200), +0.5 s   = ${Deno.inspect(await slept.get({ timeout: 10_000 }))}`);

try {
  await (await fail.delay("on purpose")).get({ timeout: 10_000 });
} catch (err) {
  if (!(err instanceof TaskError)) throw err;
  console.log(
    `fail("on purpose")   → TaskError ${err.excModule}.${err.excType}: ${err.excMessage}`,
  );
}

const t0 = performance.now();
const many = await Promise.all(Array.from({ length: 1000 }, (_, i) => add.delay(i, i)));
const values = await Promise.all(many.map((r) => r.get({ timeout: 30_000 })));
const ms = performance.now() - t0;
console.log(
  `1000 × add           = ${values.reduce((a, b) => a + b, 0)} in ${ms.toFixed(0)} ms ` +
    `(${(1000 / (ms / 1000)).toFixed(0)} round trips/s)`,
);

await worker.stop();
await app.close();
console.log(`worker stats: ${JSON.stringify(worker.stats)}`);
