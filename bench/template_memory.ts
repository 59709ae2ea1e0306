// deno-lint-ignore-file no-console
/**
 * `deno run -A --v8-flags=--expose-gc bench/template_memory.ts [N]`: what
 * the templates of `delay()` keep. N remote tasks (400) each get
 * `delay()` twice (the second call builds its template, which the app
 * keeps) on Redis, to a queue of its own that is purged after; prints the
 * growth of external memory (ArrayBuffers), V8 heap and RSS after a full
 * collection.
 *
 * @module
 */

import { Celery } from "../mod.ts";

const n = Number(Deno.args[0] ?? 400);
if (!Number.isInteger(n) || n < 1) throw new TypeError("N must be >= 1");
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");
const queue = "bench.template_memory";
const app = new Celery({
  broker: "redis://127.0.0.1:6379/10",
  backend: null,
  defaultQueue: queue,
});
const tasks = Array.from({ length: n }, (_, i) => app.remoteTask<[number]>(`bench.t${i}`));
// Connects and declares the queue first.
await app.sendTask("bench.warmup", [0]);
for (let i = 0; i < 3; i++) gc();
const before = Deno.memoryUsage();
for (const task of tasks) {
  await task.delay(1);
  await task.delay(2);
}
for (let i = 0; i < 3; i++) gc();
const after = Deno.memoryUsage();
const mib = (k: "external" | "heapUsed" | "rss") =>
  `+${((after[k] - before[k]) / 1048576).toFixed(1)} MiB`;
console.log(
  `${n} tasks, delay() twice each: external ${mib("external")}, heap ${mib("heapUsed")}, ` +
    `RSS ${mib("rss")}`,
);
await (await app.broker()).purge(queue);
await app.close();
