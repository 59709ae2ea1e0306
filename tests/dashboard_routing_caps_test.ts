/**
 * The dashboard's caps on what events carry do not break what it does with
 * them: a queue name, which routes a retry, is kept whole or not at all (a
 * cut name is no queue); a worker with a slow heartbeat stays online between
 * its heartbeats; and a task whose arguments were cut when stored is not
 * sent again with the start of them.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { ViewModel } from "../dashboard.ts";
import { HttpError } from "../src/dashboard/errors.ts";
import { retryQueues, retryTask } from "../src/dashboard/task_retry.ts";

const now = () => Date.now() / 1000;

function failed(vm: ViewModel, queue: string, args = "(1, 2)"): void {
  const at = now();
  vm.apply({
    type: "task-sent",
    hostname: "client@h",
    timestamp: at,
    uuid: "u1",
    name: "tasks.add",
    args,
    kwargs: "{}",
    queue,
  });
  vm.apply({
    type: "task-failed",
    hostname: "celery@h",
    timestamp: at + 1,
    uuid: "u1",
    exception: "E()",
  });
}

Deno.test("dashboard: a long queue name (a legal Redis key) is kept whole for a retry", () => {
  const vm = new ViewModel();
  const queue = "tenant-" + "x".repeat(300);
  failed(vm, queue);
  assert.deepEqual(retryQueues(vm, vm.tasks.get("u1")!), [queue]);
  assert.ok(vm.queuesSeen.has(queue));
});

Deno.test("dashboard: a queue name past 512 characters is not kept: a retry goes to its worker's queues", () => {
  const vm = new ViewModel();
  failed(vm, "q".repeat(100_000));
  const t = vm.tasks.get("u1")!;
  assert.equal(t.queue, null);
  assert.deepEqual([...vm.queuesSeen], []);
  assert.deepEqual(retryQueues(vm, t), []);
  vm.applyActiveQueues({ "celery@h": [{ name: "math" }] });
  assert.deepEqual(retryQueues(vm, vm.tasks.get("u1")!), ["math"]);
});

Deno.test("dashboard: a worker with a 600 s heartbeat is online until 1,200 s after one", () => {
  const vm = new ViewModel();
  const at = now();
  vm.apply({ type: "worker-heartbeat", hostname: "celery@slow", timestamp: at - 700, freq: 600 });
  assert.equal(vm.workers.get("celery@slow")!.freq, 600);
  assert.deepEqual(vm.workers.expire(at).map((w) => w.hostname), []);
  assert.equal(vm.workers.get("celery@slow")!.online, true);
  assert.deepEqual(vm.workers.expire(at + 501).map((w) => w.hostname), ["celery@slow"]);
});

Deno.test("dashboard retry: arguments cut when stored get 409 and send nothing", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  try {
    const vm = new ViewModel();
    failed(vm, "math", `(${"1, ".repeat(2000)})`);
    const t = vm.tasks.get("u1")!;
    assert.ok(t.args!.endsWith("…(truncated)"));
    const err = await retryTask(app, vm, t, {}).then(() => null, (e) => e);
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.status, 409);
    assert.equal(err.code, "args_truncated");
    assert.match(err.message, /only the start of the arguments of u1: retry it from the client/);
    assert.equal(await app.queueDepth("math"), 0);
    assert.equal(await app.queueDepth("celery"), 0);
  } finally {
    await app.close();
  }
});

Deno.test("dashboard: events with an over-long parent or root id (kept whole, linked) are refused", () => {
  const vm = new ViewModel();
  const long = "p".repeat(1 << 20);
  vm.apply({
    type: "task-received",
    hostname: "w@h",
    timestamp: now(),
    uuid: "a",
    parent_id: long,
  });
  vm.apply({ type: "task-received", hostname: "w@h", timestamp: now(), uuid: "b", root_id: long });
  assert.equal(vm.malformed, 2);
  assert.equal(vm.tasks.size, 0);
  vm.apply({ type: "task-received", hostname: "w@h", timestamp: now(), uuid: "c", root_id: "r" });
  assert.equal(vm.tasks.get("c")?.rootId, "r");
});
