/**
 * An in-process worker (inline pool, remote control on) whose app's broker
 * is closed under it while it waits for messages. Prints one JSON line: how
 * the worker ended (`failure`: its name, message, `transient`), whether
 * `stop()` settled, and the worker's error log lines. Run by tests/worker_broker_closed_test.ts in a child
 * process, so that a take loop spinning on the closed broker (which starves
 * the event loop) is killed rather than hanging the test.
 *
 * Usage: `deno run -A broker_closed_under_worker.ts <broker-url> <queue>`
 */

import { configure, type LogRecord } from "@logtape/logtape";
import { BrokerConnectionError, Celery } from "../../mod.ts";
import { Worker } from "../../src/worker/worker.ts";
import { report } from "../helpers/report.ts";

const [url, queue] = Deno.args;
const errors: LogRecord[] = [];
await configure({
  sinks: { mem: (r) => errors.push(r) },
  loggers: [
    { category: ["celeriac"], lowestLevel: "error", sinks: ["mem"] },
    { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
  ],
});
const app = new Celery({ broker: url, backend: null });
app.task("closed.t", () => 1);
const worker = new Worker({ app, pool: "inline", queues: [queue] });
await worker.start();
// A take is waiting on the empty queue when the broker closes.
await new Promise((r) => setTimeout(r, 200));
await (await app.broker()).close();
await worker.finished;
const stopped = await worker.stop().then(() => true, () => false);
const failure = worker.failure;
report(JSON.stringify({
  stopped,
  failure: failure && {
    name: failure.name,
    message: failure.message,
    transient: failure instanceof BrokerConnectionError ? failure.transient : null,
  },
  errors: errors.map((r) => r.message.map(String).join("")),
}));
await app.close();
