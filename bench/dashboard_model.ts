// deno-lint-ignore-file no-console
/**
 * The dashboard's own cost per event, apart from any broker: feed the view
 * model the events of N tasks (received, started, succeeded, and a
 * heartbeat every 100 tasks, as a worker with `-E` sends them) and report
 * events per second and the heap afterwards (the model keeps the last
 * 10,000 tasks). `deno run bench/dashboard_model.ts [--tasks N]` (default
 * 20,000). The drain's slow-down with a dashboard watching is measured by
 * `deno task bench --dashboard`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type DashboardEvent, ViewModel } from "../dashboard.ts";
import { noopReceived } from "./noop_events.ts";

const { values } = parseArgs({ args: Deno.args, options: { tasks: { type: "string" } } });
const n = Number(values.tasks ?? 20_000);
const vm = new ViewModel();
const events: DashboardEvent[] = [];
const t0 = Date.now() / 1000;
for (let i = 0; i < n; i++) {
  const uuid = crypto.randomUUID();
  const ts = t0 + i / 1000;
  const h = "celeriac@bench";
  events.push(
    { type: "task-received", hostname: h, timestamp: ts, ...noopReceived(uuid) },
    { type: "task-started", hostname: h, timestamp: ts, uuid },
    { type: "task-succeeded", hostname: h, timestamp: ts, uuid, result: "1", runtime: 0.0002 },
  );
  if (i % 100 === 0) {
    events.push({
      type: "worker-heartbeat",
      hostname: h,
      timestamp: ts,
      freq: 2,
      active: 1,
      processed: i,
    });
  }
}
const heapBefore = Deno.memoryUsage().heapUsed;
const start = performance.now();
for (const e of events) vm.apply(e);
const ms = performance.now() - start;
vm.takeChanges();
const metrics = vm.metrics.render(new Map());
const heapAfter = Deno.memoryUsage().heapUsed;
console.log(
  `${events.length} events of ${n} tasks in ${ms.toFixed(0)} ms: ` +
    `${Math.round(events.length / (ms / 1000))} events/s; tasks held ${vm.tasks.size}; ` +
    `heap +${((heapAfter - heapBefore) / 1048576).toFixed(1)} MiB (events array freed later); ` +
    `/metrics ${metrics.length} bytes`,
);
