/**
 * Permission sandboxes: a worker and a client in one process, on the
 * embedded Deno KV store. The worker process may read the current directory
 * and the environment; each task runs with only what it declares
 * (./sandbox_tasks.ts). `DENO_NO_PROMPT=1` keeps Deno from asking at a
 * terminal for what a task was not granted (it is refused instead):
 *
 *   DENO_NO_PROMPT=1 deno run --allow-read=. --allow-env examples/sandbox.ts
 */
// deno-lint-ignore-file no-console

import { TaskError } from "../mod.ts";
import { Worker } from "../worker.ts";
import { app, fib, home, peek, wordCount } from "./sandbox_tasks.ts";

app.configure({ broker: "kv://:memory:" });
const worker = new Worker({
  app,
  appModule: new URL("./sandbox_tasks.ts", import.meta.url).href,
  concurrency: 1,
});
await worker.start();

async function show(
  label: string,
  call: Promise<{ get(o: { timeout: number }): Promise<unknown> }>,
) {
  try {
    console.log(
      `${label.padEnd(28)} = ${Deno.inspect(await (await call).get({ timeout: 10_000 }))}`,
    );
  } catch (err) {
    if (!(err instanceof TaskError)) throw err;
    console.log(`${label.padEnd(28)} → ${err.excType}: ${err.excMessage[0]}`);
  }
}

await show('word_count("poem.txt")', wordCount.delay("poem.txt"));
await show("fib(50)", fib.delay(50));
await show('peek("deno.json")', peek.delay("deno.json"));
await show("home()", home.delay());
await show('word_count("poem.txt") again', wordCount.delay("poem.txt"));

await worker.stop();
await app.close();
console.log(`worker stats: ${JSON.stringify(worker.stats)}`);
