/**
 * /metrics of tasks the dashboard's task table evicted (a small `--max-tasks` under load): their
 * later events are still counted under their task name, not `task=""`, and
 * `flower_worker_prefetched_tasks` goes back to 0 once they start, and for a task revoked
 * before it started (review25 found 274 starts under `task=""` and the gauge stuck at 249).
 */

import assert from "node:assert/strict";
import { ViewModel } from "../dashboard.ts";
import { MAX_METRIC_PENDING } from "../src/dashboard/metrics.ts";

/** The value of one series of the rendered metrics, or undefined. */
function series(vm: ViewModel, name: string, labels: string): number | undefined {
  const line = vm.metrics.render(new Map()).split("\n").find((l) =>
    l.startsWith(`${name}{${labels}} `)
  );
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

Deno.test("metrics: tasks evicted from the task table keep their name and leave the prefetched gauge", () => {
  const vm = new ViewModel({ maxTasks: 2 });
  const w = "py@h";
  const ev = (type: string, uuid: string, ts: number, more: Record<string, unknown> = {}) =>
    vm.apply({ type, hostname: w, timestamp: ts, uuid, ...more });
  for (let i = 0; i < 10; i++) ev("task-received", `t${i}`, i, { name: "py.mul" });
  ev("task-received", "rv", 10, { name: "py.progress" });
  const labels = (task: string, type?: string) =>
    `worker="${w}",${type ? `type="${type}",` : ""}task="${task}"`;
  assert.equal(series(vm, "flower_worker_prefetched_tasks", labels("py.mul")), 10);
  assert.equal(vm.tasks.get("t0"), undefined); // evicted
  for (let i = 0; i < 10; i++) {
    ev("task-started", `t${i}`, 20 + i);
    ev("task-succeeded", `t${i}`, 21 + i, { result: "1", runtime: 0.5 });
  }
  ev("task-revoked", "rv", 40);
  assert.equal(series(vm, "flower_events_total", labels("py.mul", "task-started")), 10);
  assert.equal(series(vm, "flower_events_total", labels("py.mul", "task-succeeded")), 10);
  assert.equal(series(vm, "flower_events_total", labels("", "task-started")), undefined);
  assert.equal(series(vm, "flower_worker_prefetched_tasks", labels("py.mul")), 0);
  assert.equal(series(vm, "flower_worker_prefetched_tasks", labels("py.progress")), 0);
  // t9 waited 29 - 9 s for a process, then its outcome set the gauge to 0, as Flower's
  assert.equal(series(vm, "flower_task_prefetch_time_seconds", labels("py.mul")), 0);
});

Deno.test("metrics: past MAX_METRIC_PENDING waiting tasks the oldest is forgotten and counted off the prefetched gauge", () => {
  const vm = new ViewModel({ maxTasks: 10 });
  const w = "py@h", labels = `worker="${w}",task="py.mul"`;
  const ev = (type: string, uuid: string, ts: number, more: Record<string, unknown> = {}) =>
    vm.apply({ type, hostname: w, timestamp: ts, uuid, ...more });
  const over = 3;
  for (let i = 0; i < MAX_METRIC_PENDING + over; i++) {
    ev("task-received", `t${i}`, i, { name: "py.mul" });
  }
  assert.equal(series(vm, "flower_worker_prefetched_tasks", labels), MAX_METRIC_PENDING);
  ev("task-started", "t0", 1e6); // forgotten: already counted off, not twice
  assert.equal(series(vm, "flower_worker_prefetched_tasks", labels), MAX_METRIC_PENDING);
  ev("task-started", `t${over}`, 1e6); // the oldest still kept
  assert.equal(series(vm, "flower_worker_prefetched_tasks", labels), MAX_METRIC_PENDING - 1);
});
