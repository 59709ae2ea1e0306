/**
 * Task hooks (onSuccess, onFailure, onRetry, afterReturn) and app signals
 * (taskPrerun, taskPostrun, taskFailure, workerReady, workerShutdown): the
 * order Celery's tracer calls them in, where they run (task hooks and task
 * signals in the Web Worker that ran the task, worker signals in the main
 * thread), and that a hook that throws changes nothing.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Worker } from "../src/worker/worker.ts";
import { app as hooksApp, logTo } from "./apps/hooks_app.ts";

interface Event {
  event: string;
  name?: string;
  id?: string;
  retries?: number;
  extra?: unknown;
  inWebWorker: boolean;
}

for (const pool of ["threads", "inline"] as const) {
  Deno.test(`hooks (${pool} pool): hooks and signals run in Celery's order and place`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "celeriac-hooks-" });
    const url = `kv://${dir}/db.sqlite`;
    const logPath = `${dir}/hooks.jsonl`;
    logTo(logPath);
    hooksApp.configure({ broker: url, backend: url });
    const appModule = new URL("./apps/hooks_app.ts", import.meta.url);
    appModule.searchParams.set("log", logPath);
    const worker = new Worker({
      app: hooksApp,
      appModule: appModule.href,
      pool,
      concurrency: 1,
      hostname: `hooks-${pool}@test`,
    });
    const client = new Celery({ broker: url, backend: url });
    try {
      await worker.start();
      const ok = await client.sendTask<number>("h.ok", [21]);
      assert.equal(await ok.get({ timeout: 10_000 }), 42);
      const fail = await client.sendTask("h.fail", ["on purpose"]);
      await assert.rejects(fail.get({ timeout: 10_000 }), /on purpose/);
      const retry = await client.sendTask<string>("h.retry_once", []);
      assert.equal(await retry.get({ timeout: 10_000 }), "second try");
      const bad = await client.sendTask<string>("h.bad_hook", []);
      assert.equal(await bad.get({ timeout: 10_000 }), "fine", "a throwing hook changes nothing");
      await worker.stop();

      const events = (await Deno.readTextFile(logPath)).trim().split("\n").map((l) =>
        JSON.parse(l) as Event
      );
      const of = (id: string) =>
        events.filter((e) => e.id === id).map((e) => `${e.event}:${e.extra ?? ""}`);
      assert.deepEqual(of(ok.id), [
        "taskPrerun:",
        "onSuccess:42",
        "afterReturn:SUCCESS",
        "taskPostrun:SUCCESS",
      ]);
      assert.deepEqual(of(fail.id), [
        "taskPrerun:",
        "onFailure:on purpose|true",
        "taskFailure:on purpose|true",
        "afterReturn:FAILURE",
        "taskPostrun:FAILURE",
      ]);
      assert.deepEqual(of(retry.id), [
        "taskPrerun:",
        "onRetry:transient",
        "taskPostrun:RETRY",
        "taskPrerun:",
        "onSuccess:second try",
        "afterReturn:SUCCESS",
        "taskPostrun:SUCCESS",
      ]);
      assert.deepEqual(
        events.filter((e) => e.id === retry.id).map((e) => e.retries),
        [0, 0, 0, 1, 1, 1, 1],
      );
      assert.deepEqual(of(bad.id), ["taskPrerun:", "taskPostrun:SUCCESS"]);
      assert.equal(events[0].event, "workerReady");
      assert.equal(events[0].extra, `hooks-${pool}@test`);
      assert.equal(events.at(-1)?.event, "workerShutdown");
      const taskEvents = events.filter((e) => e.id);
      assert.ok(
        taskEvents.every((e) => e.inWebWorker === (pool === "threads")),
        "task hooks run where the task ran",
      );
      assert.ok(
        !events[0].inWebWorker && !events.at(-1)!.inWebWorker,
        "worker signals: main thread",
      );
    } finally {
      logTo(undefined);
      await client.close();
      await hooksApp.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("hooks: app.on returns a disconnect function; listeners must be functions", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  const seen: string[] = [];
  const off = app.on("workerReady", ({ hostname }) => {
    seen.push(hostname);
  });
  await app.signals.emit("workerReady", { hostname: "a", queues: [] });
  off();
  await app.signals.emit("workerReady", { hostname: "b", queues: [] });
  assert.deepEqual(seen, ["a"]);
  assert.equal(app.signals.has("workerReady"), false);
  assert.throws(() => app.on("taskPrerun", 42 as never), /must be a function/);
  // Connected and never called before: a typo, Celery's snake_case, a signal Celeriac lacks.
  const on = app.on.bind(app) as (name: string, listener: () => void) => () => void;
  assert.throws(
    () => on("taskFailur", () => {}),
    /Unknown signal "taskFailur" \(did you mean "taskFailure"\?\)/,
  );
  assert.throws(
    () => on("task_failure", () => {}),
    /Unknown signal "task_failure" \(did you mean "taskFailure"\?\)\. The signals are taskPrerun, /,
  );
  assert.throws(
    () => on("taskSuccess", () => {}),
    /Celery's taskSuccess has no listener here; use taskPostrun \(state "SUCCESS"\) or a task's onSuccess/,
  );
  assert.equal(app.signals.has("taskFailure"), false);
  await app.close();
});
