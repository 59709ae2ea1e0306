/**
 * Events a hostile (or broken) sender can publish to the event exchange do not
 * grow what the dashboard holds or answers without a limit: made-up task event
 * types add no `/metrics` series, a field's text is cut when stored, a
 * heartbeat's load average keeps 3 numbers and its time cannot keep a worker
 * online for ever, and the parent and root indexes hold only tasks still held.
 */

import assert from "node:assert/strict";
import { type DashboardEvent, ViewModel } from "../dashboard.ts";

const now = () => Date.now() / 1000;

Deno.test("dashboard: made-up task-… event types add no flower_events_total series", () => {
  const vm = new ViewModel();
  for (let i = 0; i < 5000; i++) {
    vm.apply({ type: `task-x${i}`, hostname: "w@h", timestamp: now(), name: "t" });
  }
  vm.apply({ type: "task-received", hostname: "w@h", timestamp: now(), uuid: "u1", name: "t" });
  vm.apply({ type: "task-started", hostname: "w@h", timestamp: now(), uuid: "u1" });
  const series = vm.metrics.render(new Map()).split("\n")
    .filter((l) => l.startsWith("flower_events_total{"));
  assert.deepEqual(series, [
    'flower_events_total{worker="w@h",type="task-received",task="t"} 1',
    'flower_events_total{worker="w@h",type="task-started",task="t"} 1',
  ]);
});

Deno.test("dashboard: a task's text fields are cut when stored, with a mark", () => {
  const vm = new ViewModel({ maxTasks: 100 });
  const big = (c: string) => c.repeat(1 << 20);
  for (let i = 0; i < 50; i++) {
    vm.apply({
      type: "task-sent",
      hostname: "c@h",
      timestamp: now(),
      uuid: `t${i}`,
      name: "t",
      args: big("a"),
      kwargs: big("k"),
      eta: big("e"),
      expires: big("x"),
      queue: big("q"),
    });
    vm.apply({
      type: "task-failed",
      hostname: "w@h",
      timestamp: now(),
      uuid: `t${i}`,
      exception: big("E"),
      traceback: big("T") + "ValueError: the end",
    });
  }
  vm.apply({
    type: "task-succeeded",
    hostname: "w@h",
    timestamp: now(),
    uuid: "t0",
    result: big("r"),
  });
  const { tasks } = vm.tasks.query({ limit: 500 });
  assert.equal(tasks.length, 50);
  let held = 0;
  for (const t of tasks) {
    for (
      const v of [t.args, t.kwargs, t.eta, t.expires, t.queue, t.result, t.exception, t.traceback]
    ) {
      held += v?.length ?? 0;
      assert.ok((v?.length ?? 0) <= 16 * 1024, `a field of ${v?.length} characters kept`);
    }
    assert.ok(t.args!.startsWith("aaaa") && t.args!.endsWith("…(truncated)"), t.args!.slice(-20));
    // A traceback keeps its end: the innermost frame and the error
    assert.ok(t.traceback!.endsWith("ValueError: the end"));
    assert.ok(t.traceback!.startsWith("(truncated)…"));
  }
  assert.ok(held < 50 * 64 * 1024, `${held} characters held for 50 tasks`);
  // Short fields are kept as sent
  vm.apply({ type: "task-received", hostname: "w@h", timestamp: now(), uuid: "s", args: "(1, 2)" });
  assert.equal(vm.tasks.get("s")?.args, "(1, 2)");
});

Deno.test("dashboard: events with an over-long id, node name or task name are refused", () => {
  const vm = new ViewModel();
  const long = "n".repeat(100_000);
  vm.apply({ type: "task-received", hostname: long, timestamp: now(), uuid: "a", name: "t" });
  vm.apply({ type: "task-received", hostname: "w@h", timestamp: now(), uuid: long, name: "t" });
  vm.apply({ type: "task-received", hostname: "w@h", timestamp: now(), uuid: "b", name: long });
  vm.apply({ type: "worker-heartbeat", hostname: long, timestamp: now() });
  assert.equal(vm.malformed, 4);
  assert.equal(vm.tasks.size, 0);
  assert.equal(vm.workers.list().length, 0);
});

Deno.test("dashboard: a heartbeat keeps 3 load averages and cannot stay online for ever", () => {
  const vm = new ViewModel();
  const at = now();
  vm.apply({
    type: "worker-heartbeat",
    hostname: "fake@x",
    timestamp: at + 1e9,
    freq: 1e9,
    loadavg: Array.from({ length: 100_000 }, () => 1),
  } as DashboardEvent);
  const w = vm.workers.get("fake@x")!;
  assert.equal(w.loadavg.length, 3, `${w.loadavg.length} load averages kept`);
  assert.ok(w.online);
  const later = vm.workers.list(at + 86_400).find((x) => x.hostname === "fake@x")!;
  assert.equal(later.online, false, "a heartbeat from 1e9 s ahead is still online a day later");
  assert.deepEqual(vm.workers.onlineNames(), []);
});

Deno.test("dashboard: the parent and root indexes hold only ids of tasks still held", () => {
  const vm = new ViewModel({ maxTasks: 100 });
  const at = now();
  for (let p = 0; p < 200; p++) {
    for (let c = 0; c < 50; c++) {
      vm.apply({
        type: "task-received",
        hostname: "w@h",
        timestamp: at,
        uuid: `p${p}c${c}`,
        parent_id: `p${p}`,
        root_id: `r${p}`,
        name: "t",
      });
    }
  }
  assert.equal(vm.tasks.size, 100);
  let children = 0, members = 0;
  for (let p = 0; p < 200; p++) {
    children += vm.tasks.children(`p${p}`).length;
    members += vm.tasks.members(`r${p}`).length;
    for (const id of vm.tasks.children(`p${p}`)) {
      assert.ok(vm.tasks.get(id), `${id} listed, not held`);
    }
  }
  assert.equal(children, 100);
  assert.equal(members, 100);
  assert.deepEqual(vm.tasks.children("p199"), Array.from({ length: 50 }, (_, c) => `p199c${c}`));
  assert.deepEqual(vm.tasks.children("p0"), []);
});
