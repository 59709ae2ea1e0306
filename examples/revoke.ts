/**
 * Revoking tasks: one waiting for its countdown, and one already running
 * (terminated). A worker and a client in one process, on the embedded KV
 * store; on Redis the same calls reach Python workers too.
 *
 *   deno run examples/revoke.ts
 *
 * (Its worker runs tasks on the main thread, `pool: "inline"`: no Web Worker
 * script to read, so no --allow-read.)
 */
// deno-lint-ignore-file no-console

import { Celery, TaskError } from "../mod.ts";
import { Worker } from "../worker.ts";

const app = new Celery({ broker: "kv://:memory:" });
const buildReport = app.task("reports.build", (year: number) => `report ${year}`);
const export_ = app.task(
  "reports.export",
  { bind: true },
  (ctx, rows: number) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => resolve(`exported ${rows} rows`), 60_000);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(new Error("export stopped: cleaned up the partial file"));
      });
    }),
);

const worker = new Worker({ app, pool: "inline" });
await worker.start();

async function outcome(result: { get(o: { timeout: number }): Promise<unknown> }) {
  try {
    return `succeeded: ${await result.get({ timeout: 10_000 })}`;
  } catch (err) {
    if (!(err instanceof TaskError)) throw err;
    return `${err.excType}(${err.excMessage.map((m) => JSON.stringify(m)).join(", ")})`;
  }
}

const later = await buildReport.applyAsync([2024], { countdown: 3600 });
await later.revoke();
const laterOutcome = await outcome(later);
console.log(`countdown task: ${await later.state()}, ${laterOutcome}`);

const running = await export_.delay(1_000_000);
while (worker.active === 0) await new Promise((r) => setTimeout(r, 10));
await app.control.revoke(running.id, { terminate: true });
const runningOutcome = await outcome(running);
console.log(`running task:   ${await running.state()}, ${runningOutcome}`);

await worker.stop();
console.log(`worker stats:   ${JSON.stringify(worker.stats)}`);
await app.close();
