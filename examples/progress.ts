/**
 * Progress reports: a task stores PROGRESS states with ctx.updateState(),
 * the client follows them as they are stored (push, no polling). A worker
 * and a client in one process, on the embedded Deno KV store:
 *
 *   deno run --allow-read=. examples/progress.ts
 *
 * The worker's Web Workers import this same module for its tasks; only the
 * main program (import.meta.main) runs the worker and the client.
 */
// deno-lint-ignore-file no-console

import { Celery } from "../mod.ts";
import { Worker } from "../worker.ts";

export const app = new Celery({ broker: "kv://:memory:" });

export const importRows = app.task(
  "examples.import_rows",
  { bind: true },
  async (ctx, rows: number) => {
    for (let done = 1; done <= rows; done++) {
      await new Promise((r) => setTimeout(r, 100)); // the work of one row
      await ctx.updateState({ state: "PROGRESS", meta: { done, total: rows } });
    }
    return rows;
  },
);

if (import.meta.main) {
  const worker = new Worker({ app, appModule: import.meta.url, concurrency: 1 });
  await worker.start();

  const result = await importRows.delay(5);
  const count = await result.onProgress((update) => {
    const { done, total } = update.info as { done: number; total: number };
    console.log(`${update.state} ${done}/${total}`);
  }, { timeout: 30_000 });
  console.log(`imported ${count} rows`);

  for await (const { state, info } of (await importRows.delay(3)).updates({ timeout: 30_000 })) {
    console.log("update:", state, JSON.stringify(info));
  }

  await worker.stop();
  await app.close();
}
