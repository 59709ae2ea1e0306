/**
 * Monitoring from TypeScript: a worker with task events on, an event
 * receiver feeding an `EventState`, and inspect replies. Worker and client
 * share one process on the embedded KV store; on Redis or RabbitMQ the same
 * calls see every Celeriac and Python worker.
 *
 *   deno run --allow-env examples/monitor.ts
 *
 * (Its worker runs tasks on the main thread, `pool: "inline"`: no Web Worker
 * script to read, so no --allow-read.)
 */
// deno-lint-ignore-file no-console

import { Celery, EventState } from "../mod.ts";
import { Worker } from "../worker.ts";

const app = new Celery({ broker: "kv://:memory:" });
const add = app.task("tasks.add", (a: number, b: number) => a + b);
const fail = app.task("tasks.fail", (why: string): never => {
  throw new RangeError(why);
});

const worker = new Worker({ app, pool: "inline", hostname: "example@%h", taskEvents: true });
await worker.start();

// Follow every event, as Flower does, until both tasks have finished and the
// worker has answered the receiver's wake-up with a heartbeat (task events
// name the worker; its software comes with worker-online and heartbeats).
const state = new EventState();
const done = new AbortController();
const watching = (async () => {
  for await (const e of app.events.receive({ signal: done.signal })) {
    state.event(e);
    const ready = state.countByState();
    const heard = state.aliveWorkers().some((w) => w.software !== null);
    if ((ready.SUCCESS ?? 0) + (ready.FAILURE ?? 0) === 2 && heard) done.abort();
  }
})();
await new Promise((r) => setTimeout(r, 200)); // let the receiver subscribe

const sum = await add.delay(2, 3);
await fail.delay("on purpose");
await watching;

for (const t of state.latest(10).reverse()) {
  console.log(`${t.state.padEnd(8)} ${t.name}${t.args} -> ${t.result ?? t.exception}`);
}
const [w] = state.aliveWorkers();
console.log(`worker ${w.hostname} alive, software ${w.software?.ident}`);

const inspect = app.control.inspect({ timeout: 2 });
const stats = await inspect.stats();
console.log("tasks run:", JSON.stringify(stats[worker.hostname].total));
console.log("ping:", JSON.stringify(await app.control.ping()));
console.log("sum =", await sum.get({ timeout: 5000 }));

await worker.stop();
await app.close();
