/**
 * The dashboard's pure parts, fed with the events a real Celery 5.2.6
 * worker sent (tests/fixtures/dashboard/events_all.json): task table,
 * workers by heartbeat, throughput, Flower-named Prometheus metrics, and
 * reading Python reprs back for "retry".
 */

import assert from "node:assert/strict";
import {
  type DashboardEvent,
  parsePyLiteral,
  PyLiteralError,
  type TaskFacts,
  TaskTable,
  Throughput,
  ViewModel,
} from "../dashboard.ts";
import { celeryRequestedHeartbeat } from "./helpers/fixtures.ts";
import { PyFloat } from "../src/protocol/json.ts";

const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/dashboard/events_all.json", import.meta.url)),
) as { events: DashboardEvent[] };
const events = fixture.events;

function fed(): ViewModel {
  const vm = new ViewModel();
  for (const e of events) vm.apply(e);
  return vm;
}

Deno.test("view model: every task of the capture with its final state", () => {
  const vm = fed();
  const counts = vm.tasks.countByState();
  assert.equal(vm.eventCount, events.length);
  assert.ok((counts.SUCCESS ?? 0) >= 15, JSON.stringify(counts));
  assert.ok((counts.FAILURE ?? 0) >= 5, JSON.stringify(counts));
  assert.ok((counts.REVOKED ?? 0) >= 1, JSON.stringify(counts));
  const add = vm.tasks.get("1e85b1f9-f1fb-4599-9e52-f8d7026bb6dc")!;
  assert.equal(add.name, "capapp.add");
  assert.equal(add.args, "(2, 3)");
  assert.equal(add.result, "5");
  assert.equal(add.state, "SUCCESS");
  assert.equal(add.worker, "celery@fixture-host");
  assert.deepEqual(add.timeline.map((s) => s.state), ["PENDING", "RECEIVED", "STARTED", "SUCCESS"]);
  assert.ok(add.runtime! > 0);
});

Deno.test("view model: a failure keeps exception and traceback; a retry shows in the timeline", () => {
  const vm = fed();
  const fail = vm.tasks.get("285fdcc6-1ac9-4962-a447-784c77cf3785")!;
  assert.equal(fail.state, "FAILURE");
  assert.equal(fail.exception, "ValueError('boom')");
  assert.match(fail.traceback!, /^Traceback \(most recent call last\)/);
  const retried = vm.tasks.get("c238f2a6-1f4e-4400-999a-1d7e24264e31")!;
  assert.equal(retried.state, "SUCCESS");
  assert.equal(retried.retries, 1);
  assert.ok(retried.timeline.some((s) => s.state === "RETRY"));
  assert.equal(retried.parentId, null, "a retry names itself as parent: not its own child");
});

Deno.test("view model: a chain's child is linked to its parent and root", () => {
  const vm = fed();
  const child = vm.tasks.get("3871bf7d-3415-4f26-aa48-dee732b4c151")!;
  assert.equal(child.parentId, "a5ab1a65-9b6f-45ed-8d3c-cbe866a9bf45");
  assert.equal(child.rootId, "a5ab1a65-9b6f-45ed-8d3c-cbe866a9bf45");
  assert.deepEqual(vm.tasks.children("a5ab1a65-9b6f-45ed-8d3c-cbe866a9bf45"), [child.uuid]);
});

Deno.test("view model: the Python worker is online until its heartbeat is overdue or it says offline", () => {
  const vm = new ViewModel();
  const online = events.find((e) => e.type === "worker-online")!;
  const now = Date.now() / 1000;
  vm.apply({ ...online, timestamp: now });
  const [w] = vm.workers.list(now + 1);
  assert.equal(w.online, true);
  assert.equal(w.language, "python");
  assert.equal(w.software, "py-celery 5.2.6");
  vm.tick(now + 5); // freq 2 s: silent for more than 4 s
  assert.equal(vm.workers.get(w.hostname)!.online, false);
  assert.match(
    vm.metrics.render(new Map()),
    /flower_worker_online\{worker="celery@fixture-host"\} 0/,
  );
  vm.apply({ ...online, type: "worker-heartbeat", timestamp: now + 6 });
  assert.equal(vm.workers.get(w.hostname)!.online, true);
  vm.apply({ ...online, type: "worker-offline", timestamp: now + 7 });
  assert.equal(vm.workers.get(w.hostname)!.online, false);
});

Deno.test("view model: the heartbeat the heartbeat command asks for (no counts) keeps the worker's counts", () => {
  const vm = new ViewModel();
  const requested = JSON.parse(celeryRequestedHeartbeat()) as DashboardEvent;
  const online = events.find((e) => e.type === "worker-online")!;
  assert.equal(online.hostname, requested.hostname);
  vm.apply({ ...online, timestamp: requested.timestamp - 5, active: 2, processed: 9 });
  vm.apply(requested);
  const w = vm.workers.get(requested.hostname)!;
  assert.equal(w.online, true);
  assert.equal(w.lastHeartbeat, requested.timestamp);
  assert.deepEqual([w.active, w.processed, w.freq], [2, 9, 5]);
  assert.deepEqual(w.loadavg, online.loadavg);
  assert.match(
    vm.metrics.render(new Map()),
    /flower_worker_number_of_currently_executing_tasks\{worker="celery@fixture-host"\} 2/,
  );
});

Deno.test("view model: malformed events are counted and ignored", () => {
  const vm = new ViewModel();
  vm.apply({ hostname: "x" } as unknown as DashboardEvent);
  vm.apply(null as unknown as DashboardEvent);
  assert.equal(vm.malformed, 2);
  assert.equal(vm.eventCount, 0);
});

Deno.test("view model: an outcome without a usable timestamp counts now and breaks nothing", () => {
  const vm = new ViewModel();
  const before = Date.now() / 1000;
  for (const timestamp of [undefined, "soon", -5, NaN]) {
    vm.apply(
      {
        type: "task-succeeded",
        hostname: "w",
        uuid: `t${timestamp}`,
        timestamp,
        runtime: 0.5,
      } as unknown as DashboardEvent,
    );
  }
  const points = vm.throughput.series(Date.now() / 1000 + 1, { window: 10, step: 1 });
  assert.equal(points.reduce((n, p) => n + p.succeeded, 0), 4);
  assert.ok(vm.tasks.get("tundefined")!.lastSeen >= Math.floor(before));
});

Deno.test("task table: bounded; events out of order keep the latest state", () => {
  const table = new TaskTable({ maxTasks: 3 });
  for (let i = 0; i < 10; i++) {
    table.apply({ type: "task-received", hostname: "w", timestamp: i, uuid: `t${i}`, name: "n" });
  }
  assert.equal(table.size, 3);
  assert.equal(table.get("t0"), undefined);
  table.apply({ type: "task-succeeded", hostname: "w", timestamp: 20, uuid: "t9", result: "1" });
  table.apply({ type: "task-started", hostname: "w", timestamp: 15, uuid: "t9" });
  assert.equal(table.get("t9")!.state, "SUCCESS");
  assert.deepEqual(table.get("t9")!.timeline.map((s) => s.state), [
    "RECEIVED",
    "STARTED",
    "SUCCESS",
  ]);
  assert.throws(() => new TaskTable({ maxTasks: 0 }), RangeError);
});

Deno.test("task table: tasks first seen in the same millisecond are listed newest first too", () => {
  const table = new TaskTable();
  // a worker draining 20,000 tasks a second stamps ~20 task-received events with the same ms
  const ts = 1_700_000_000.123;
  for (const uuid of ["a", "b", "c"]) {
    table.apply({ type: "task-received", uuid, hostname: "w@h", timestamp: ts, name: "t" });
  }
  assert.deepEqual(table.query().tasks.map((t) => t.uuid), ["c", "b", "a"]);
});

Deno.test("task table: the least recently updated go first; an update in the newer half keeps its place", () => {
  const table = new TaskTable({ maxTasks: 10 });
  const received = (uuid: string, timestamp: number) =>
    table.apply({ type: "task-received", hostname: "w", timestamp, uuid, name: "n" });
  for (let i = 0; i < 10; i++) received(`t${i}`, i);
  // t0 is the oldest: updated, it moves to the newest end, and t1 goes first instead
  table.apply({ type: "task-started", hostname: "w", timestamp: 10, uuid: "t0" });
  received("t10", 11);
  assert.equal(table.get("t1"), undefined);
  assert.equal(table.get("t0")?.state, "STARTED");
  // t9 is among the newest half: updated, it keeps its place (no move), and is still kept
  // while fewer than maxTasks / 2 newer tasks arrive
  table.apply({ type: "task-started", hostname: "w", timestamp: 12, uuid: "t9" });
  for (let i = 11; i < 15; i++) received(`t${i}`, i + 2);
  assert.equal(table.get("t9")?.state, "STARTED");
  assert.deepEqual(["t2", "t3", "t4", "t5"].map((id) => table.get(id)), [
    undefined,
    undefined,
    undefined,
    undefined,
  ]);
  assert.equal(table.size, 10);
});

Deno.test("view model: changes name the latest 200 tasks changed and say when there were more", () => {
  const vm = new ViewModel();
  for (let i = 0; i < 250; i++) {
    vm.apply({ type: "task-received", hostname: "w", timestamp: i, uuid: `t${i}`, name: "n" });
    vm.apply({ type: "task-started", hostname: "w", timestamp: i, uuid: `t${i}` });
  }
  const changes = vm.takeChanges();
  assert.equal(changes.tasks.length, 200);
  assert.equal(changes.tasks[0].uuid, "t50");
  assert.equal(changes.tasks[199].uuid, "t249");
  assert.equal(changes.more, true);
  assert.equal(changes.events, 500);
  vm.apply({ type: "task-succeeded", hostname: "w", timestamp: 300, uuid: "t7", result: "1" });
  const next = vm.takeChanges();
  assert.deepEqual(next.tasks.map((t) => [t.uuid, t.state]), [["t7", "SUCCESS"]]);
  assert.equal(next.more, false);
});

Deno.test("view model: with task changes not recorded, the state is whole and changes say `more`", () => {
  const vm = new ViewModel();
  vm.recordTaskChanges = false;
  vm.apply({ type: "task-received", hostname: "w", timestamp: 1, uuid: "t1", name: "n" });
  vm.apply({ type: "task-succeeded", hostname: "w", timestamp: 2, uuid: "t1", result: "3" });
  const off = vm.takeChanges();
  assert.deepEqual([off.tasks.length, off.more, off.events], [0, true, 2]);
  assert.deepEqual(off.workers.map((w) => w.hostname), ["w"]);
  assert.equal(vm.tasks.get("t1")?.result, "3");
  vm.recordTaskChanges = true;
  vm.apply({ type: "task-started", hostname: "w", timestamp: 3, uuid: "t2" });
  const on = vm.takeChanges();
  assert.deepEqual(on.tasks.map((t) => t.uuid), ["t2"]);
  assert.equal(on.more, false);
});

Deno.test("task table: a timeline past its short length keeps timestamp order and its cap", () => {
  const table = new TaskTable();
  for (let i = 0; i < 120; i++) {
    const ts = i % 10 === 9 ? i - 5 : i; // every tenth step comes late
    table.apply({ type: "task-retried", hostname: `w${i % 3}`, timestamp: ts, uuid: "t" });
  }
  const t = table.get("t")!;
  assert.equal(t.timeline.length, 100);
  const stamps = t.timeline.map((s) => s.timestamp);
  assert.deepEqual(stamps, [...stamps].sort((a, b) => a - b));
  assert.equal(t.worker, "w2");
  assert.deepEqual([t.firstSeen, t.lastSeen], [0, 118]);
  const first = t.timeline[0].hostname;
  t.timeline[0].hostname = "edited";
  assert.equal(
    table.get("t")!.timeline[0].hostname,
    first,
    "a long timeline's steps are copies too",
  );
});

Deno.test("task table: apply says which events were task events and fills the facts; get gives a copy", () => {
  const table = new TaskTable();
  const facts: TaskFacts = { name: null, queue: null, eta: null, received: null, started: null };
  assert.equal(
    table.apply({ type: "worker-heartbeat", hostname: "w", timestamp: 1 }, facts),
    false,
  );
  assert.equal(table.apply({ type: "task-started", hostname: "w", timestamp: 1 }, facts), false);
  assert.equal(
    table.apply({
      type: "task-sent",
      hostname: "c",
      timestamp: 1,
      uuid: "t",
      name: "add",
      queue: "q",
    }),
    true,
  );
  table.apply({ type: "task-received", hostname: "w", timestamp: 2, uuid: "t" }, facts);
  assert.deepEqual(facts, { name: "add", queue: "q", eta: null, received: 2, started: null });
  const before = table.get("t")!;
  table.apply({ type: "task-started", hostname: "w", timestamp: 3, uuid: "t" }, facts);
  assert.deepEqual([facts.received, facts.started], [2, 3]);
  assert.equal(before.state, "RECEIVED", "a record is a copy: later events do not change it");
  assert.equal(table.get("t")!.state, "STARTED");
  table.get("t")!.timeline.length = 0;
  assert.equal(table.get("t")!.timeline.length, 3, "nor does changing the copy change the table");
});

Deno.test("task table: a slot taken over from an evicted task starts empty, long timeline and all", () => {
  const table = new TaskTable({ maxTasks: 2 });
  for (let i = 0; i < 7; i++) {
    table.apply({
      type: "task-retried",
      hostname: "w",
      timestamp: i,
      uuid: "old",
      exception: "E()",
    });
  }
  assert.equal(table.get("old")!.timeline.length, 7);
  table.apply({ type: "task-received", hostname: "w", timestamp: 10, uuid: "a", name: "n" });
  table.apply({ type: "task-received", hostname: "w", timestamp: 11, uuid: "b" });
  assert.equal(table.get("old"), undefined);
  const b = table.get("b")!;
  assert.deepEqual(
    [b.name, b.exception, b.retries, b.runtime, b.started, b.firstSeen, b.state],
    [null, null, 0, null, null, 11, "RECEIVED"],
  );
  assert.deepEqual(b.timeline, [{ state: "RECEIVED", timestamp: 11, hostname: "w" }]);
  for (let i = 0; i < 6; i++) {
    table.apply({ type: "task-started", hostname: "w", timestamp: 20 + i, uuid: "b" });
  }
  assert.equal(table.get("b")!.timeline.length, 7);
  assert.deepEqual(table.query({ limit: 10 }).tasks.map((t) => t.uuid), ["b", "a"]);
});

Deno.test("task table: filters by state, name, worker, text; newest first; paging", () => {
  const vm = fed();
  const failures = vm.tasks.query({ state: "FAILURE" });
  assert.ok(failures.tasks.every((t) => t.state === "FAILURE"));
  assert.equal(failures.total, vm.tasks.countByState().FAILURE);
  const adds = vm.tasks.query({ name: "CAPAPP.ADD" });
  assert.ok(adds.total >= 3 && adds.tasks.every((t) => t.name === "capapp.add"));
  assert.equal(vm.tasks.query({ text: "linked-failure" }).total, 1);
  assert.equal(vm.tasks.query({ worker: "nobody@host" }).total, 0);
  const all = vm.tasks.query({ limit: 500 });
  for (let i = 1; i < all.tasks.length; i++) {
    assert.ok(all.tasks[i - 1].firstSeen >= all.tasks[i].firstSeen);
  }
  const page2 = vm.tasks.query({ offset: 5, limit: 5 });
  assert.deepEqual(page2.tasks.map((t) => t.uuid), all.tasks.slice(5, 10).map((t) => t.uuid));
});

Deno.test("throughput: per-second outcomes and runtime percentiles in windows", () => {
  const tp = new Throughput({ seconds: 60 });
  for (let i = 0; i < 100; i++) tp.record("task-succeeded", 1000 + i / 100, (i + 1) / 1000);
  tp.record("task-failed", 1003.5, 1);
  tp.record("task-started", 1003.5); // not an outcome
  const points = tp.series(1009, { window: 10, step: 5 });
  assert.deepEqual(points.map((p) => p.t), [1000, 1005]);
  assert.equal(points[0].succeeded, 100 / 5);
  assert.equal(points[0].failed, 1 / 5);
  assert.equal(points[0].p50, 0.051);
  assert.equal(points[0].p99, 0.1);
  assert.equal(points[1].succeeded, 0);
  assert.equal(points[1].p50, null);
  // a second from a minute ago is overwritten, not counted again
  tp.record("task-succeeded", 1060.1, 0.5);
  assert.equal(tp.series(1064, { window: 5, step: 5 })[0].succeeded, 1 / 5);
});

Deno.test("metrics: Flower's names and labels in the Prometheus text format", () => {
  const vm = fed();
  const text = vm.metrics.render(new Map([["celery", 7]]));
  assert.match(
    text,
    /^flower_events_total\{worker="celery@fixture-host",type="task-succeeded",task="capapp\.add"\} \d+$/m,
  );
  assert.match(text, /^# TYPE flower_task_runtime_seconds histogram$/m);
  assert.match(
    text,
    /^flower_task_runtime_seconds_bucket\{worker="celery@fixture-host",task="capapp\.tracked",le="0\.25"\} 0$/m,
  );
  assert.match(
    text,
    /^flower_task_runtime_seconds_bucket\{worker="celery@fixture-host",task="capapp\.tracked",le="0\.75"\} 1$/m,
  );
  assert.match(
    text,
    /^flower_task_runtime_seconds_count\{worker="celery@fixture-host",task="capapp\.add"\} \d+$/m,
  );
  // buckets are cumulative: each counts the runtimes up to its bound, +Inf all of them
  for (const [uuid, runtime] of [["r1", 0.003], ["r2", 0.02], ["r3", 0.02], ["r4", 30]] as const) {
    vm.apply({ type: "task-succeeded", hostname: "h", timestamp: 1, uuid, runtime });
  }
  const buckets = [
    ...vm.metrics.render(new Map()).matchAll(
      /^flower_task_runtime_seconds_bucket\{worker="h",task="",le="([^"]+)"\} (\d+)$/gm,
    ),
  ].map((m) => `${m[1]}:${m[2]}`);
  assert.deepEqual(buckets.slice(0, 3), ["0.005:1", "0.01:1", "0.025:3"]);
  assert.deepEqual(buckets.slice(-2), ["10.0:3", "+Inf:4"]);
  // The bounds as prometheus_client (Flower) writes them: `le="1"` found nothing on a
  // Prometheus 2 panel that selects Flower's `le="1.0"`.
  assert.deepEqual(
    buckets.map((b) => b.split(":")[0]),
    "0.005 0.01 0.025 0.05 0.075 0.1 0.25 0.5 0.75 1.0 2.5 5.0 7.5 10.0 +Inf".split(" "),
  );
  assert.match(text, /^flower_worker_online\{worker="celery@fixture-host"\} 0$/m); // it went offline
  assert.match(text, /^# TYPE flower_worker_prefetched_tasks gauge$/m);
  assert.match(
    text,
    /^flower_task_prefetch_time_seconds\{worker="celery@fixture-host",task="capapp\.add"\} /m,
  );
  assert.match(
    text,
    /^flower_worker_number_of_currently_executing_tasks\{worker="celery@fixture-host"\} 0$/m,
  );
  assert.match(text, /^celeriac_queue_length\{queue="celery"\} 7$/m);
  // label values are escaped
  vm.apply({ type: "task-received", hostname: 'a"b\\c', timestamp: 1, uuid: "q", name: "x\ny" });
  assert.match(
    vm.metrics.render(new Map()),
    /worker="a\\"b\\\\c",type="task-received",task="x\\ny"/,
  );
});

Deno.test("py literal: reprs of args and kwargs read back; anything else refused", () => {
  assert.deepEqual(parsePyLiteral("(2, 3)"), [2, 3]);
  assert.deepEqual(parsePyLiteral("('boom',)"), ["boom"]);
  assert.deepEqual(parsePyLiteral("()"), []);
  assert.deepEqual(
    parsePyLiteral(
      `{'a': [1, -2.5, 1e3], "b": None, 'c': (True, False), 'd': 'it\\'s \\n\\x41\\u00e9'}`,
    ),
    { a: [1, -2.5, new PyFloat(1000)], b: null, c: [true, false], d: "it's \nAé" },
  );
  for (const bad of ["(Decimal('1'),)", "[1, 2", "{1: 2}", "(inf,)", "'open", "(1) x"]) {
    assert.throws(() => parsePyLiteral(bad), PyLiteralError, bad);
  }
});

Deno.test("view model: inspect active_queues gives each worker's queues and the queue list", () => {
  const vm = fed();
  vm.takeChanges();
  vm.applyActiveQueues({
    "celery@fixture-host": [{ name: "celery", exclusive: false }, { name: "emails" }],
    "ghost@nowhere": [{ name: "ghost-q" }],
    "broken@host": "not a list",
  });
  assert.deepEqual(vm.workers.get("celery@fixture-host")!.queues, ["celery", "emails"]);
  assert.equal(
    vm.workers.get("ghost@nowhere"),
    undefined,
    "no record for a node that sent no event",
  );
  assert.ok(vm.queuesSeen.has("emails") && vm.queuesSeen.has("ghost-q"));
  assert.deepEqual(vm.takeChanges().workers.map((w) => w.hostname), ["celery@fixture-host"]);
});

// `pool` of `inspect stats` replies of Celery 5.2.6 workers (prefork after `pool_grow 2`, prefork
// with --autoscale 4,1 after `autoscale 6 3`, threads -c 3, solo) and of a Celeriac worker.
Deno.test("view model: the pool size follows pool_grow and autoscale of a Python prefork worker", () => {
  const vm = fed();
  const nodes = ["grown@h", "auto@h", "threads@h", "solo@h", "celeriac@h"];
  for (const hostname of nodes) {
    vm.apply({ type: "worker-online", hostname, timestamp: Date.now() / 1000, freq: 2 });
  }
  vm.applyStats({
    "grown@h": { pool: { "max-concurrency": 2, processes: [12275, 12357, 12595, 12610] } },
    "auto@h": {
      pool: { "max-concurrency": 1, processes: [22892, 23504, 23505] },
      autoscaler: { max: 6, min: 3, current: 3, qty: 0 },
    },
    "threads@h": { pool: { "max-concurrency": 3, threads: 0 } },
    "solo@h": { pool: { "max-concurrency": 1, processes: [22876], timeouts: [] } },
    "celeriac@h": { pool: { "max-concurrency": 2, processes: [13845, 13845] } },
  });
  assert.deepEqual(nodes.map((n) => vm.workers.get(n)!.pool), [4, 3, 3, 1, 2]);
  // a prefork pool shrunk to nothing lists no process: 0, not its max-concurrency
  vm.applyStats({ "grown@h": { pool: { "max-concurrency": 2, processes: [] } } });
  assert.equal(vm.workers.get("grown@h")!.pool, 0);
});

Deno.test("view model: memory stays bounded over 30,000 tasks of workflows", () => {
  const vm = new ViewModel({ maxTasks: 1000 });
  for (let i = 0; i < 30_000; i++) {
    const root = `root-${Math.floor(i / 3)}`;
    vm.apply({
      type: "task-received",
      hostname: "w@h",
      timestamp: 1000 + i / 1000,
      uuid: i % 3 === 0 ? root : `t${i}`,
      name: "n",
      root_id: root,
      parent_id: i % 3 === 0 ? null : root,
    });
  }
  assert.equal(vm.tasks.size, 1000);
  // indexes of evicted parents and roots are bounded too: the oldest are gone
  assert.deepEqual(vm.tasks.children("root-0"), []);
  assert.deepEqual(vm.tasks.members("root-0"), []);
  assert.deepEqual(vm.tasks.children("root-9999"), ["t29998", "t29999"]);
  assert.equal(vm.takeChanges().tasks.length, 200);
});
