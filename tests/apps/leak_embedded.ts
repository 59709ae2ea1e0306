/**
 * A program running its own `Worker` (the library, not the command line) on
 * leak_app.ts's tasks, leaving `leakedThreadsRestart` to its default. Logs
 * at INFO to stderr, prints `embedded worker ready` once taking tasks and
 * `failure: <name or null>` once stopped (SIGTERM stops it). Run by
 * tests/thread_leak_test.ts in a child process: a leaked thread ends only
 * with its process.
 *
 * Usage: `deno run -A leak_embedded.ts <broker-url> <queue> [grace-seconds]`
 */

import { setupLogging } from "../../src/cli/logging.ts";
import { Worker } from "../../src/worker/worker.ts";
import { report } from "../helpers/report.ts";
import { app } from "./leak_app.ts";

const [url, queue, grace] = Deno.args;
await setupLogging("info");
app.configure({ broker: url, backend: url });
const worker = new Worker({
  app,
  appModule: new URL("./leak_app.ts", import.meta.url).href,
  queues: [queue],
  concurrency: 1,
  prefetch: 1,
  heartbeatInterval: 0,
  leakedThreadsGrace: grace ? Number(grace) : undefined,
});
const stop = () => void worker.stop();
Deno.addSignalListener("SIGTERM", stop);
await worker.start();
report("embedded worker ready");
await worker.finished;
Deno.removeSignalListener("SIGTERM", stop);
report(`failure: ${worker.failure?.name ?? null}`);
await app.close();
Deno.exit(0); // a leaked thread would keep the process
