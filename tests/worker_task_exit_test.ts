/**
 * Task code that ends the thread it runs on or leaves an error behind it:
 * `Deno.exit()`, `close()` and `node:process`'s `exit` in a Web Worker (its
 * tasks settle as for any Web Worker that dies, it is replaced, the worker
 * goes on), and an unhandled rejection or a throw from a timer under the
 * inline pool (logged, the worker goes on). Real workers on Redis: the
 * threads pool in-process, and the command line.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { Celery, type Task } from "../mod.ts";
import type { RunOutcome } from "../src/worker/executor.ts";
import { ThreadPool } from "../src/worker/thread_pool.ts";
import { ExitCalled } from "../src/worker/exit_called.ts";
import { runHooks } from "../src/worker/task_hooks.ts";
import type { Worker, WorkerOptions } from "../src/worker/worker.ts";
import { app as exitApp } from "./apps/exit_app.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { celeriacWorker, celeriacWorkerArgs } from "./helpers/procs.ts";
import { messageRunRequest, nextSeq, poolRunRequest } from "./helpers/run_info.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { taskFailure, withAppWorker } from "./helpers/worker.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

const APP = new URL("./apps/exit_app.ts", import.meta.url).href;
const prefix = uniquePrefix("task-exit");
const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `task exit: ${name}`, ignore: WITHOUT_REDIS }, fn);

interface Wid {
  wid: string;
  tag: unknown;
}

function withWorker(
  options: Partial<WorkerOptions>,
  fn: (client: Celery, worker: Worker) => Promise<void>,
): Promise<void> {
  const queue = `xq-${crypto.randomUUID().slice(0, 8)}`;
  const config = { broker: url, backend: url };
  return withAppWorker(exitApp, APP, config, { prefetch: 4, ...options }, fn, queue);
}

Deno.test("task exit: a task handed on as the pool reports the loss runs on the replacement", async () => {
  const outcomes: RunOutcome[] = [];
  const lost: string[] = [];
  const second = poolRunRequest("x.wid", ["second"]);
  const done = Promise.withResolvers<void>();
  const pool: ThreadPool = new ThreadPool({ size: 1, slots: 4, module: APP, config: {} }, {
    onOutcomes: (o) => {
      outcomes.push(...o);
      if (o.some((x) => x.seq === second.seq)) done.resolve();
    },
    onPublish: () => Promise.resolve(),
    // As the worker does: the settled task frees its slot, and a waiting task is handed on at once.
    onLost: (seqs, reason) => {
      lost.push(...seqs.map((s) => `${s}: ${reason}`));
      if (seqs.includes(second.seq)) done.resolve();
      else pool.run([second]);
    },
    onTimeLimit: () => {},
  });
  await pool.start();
  try {
    const exit = poolRunRequest("x.exit", ["exit", 0]);
    pool.run([exit]);
    await done.promise;
    assert.deepEqual(lost, [`${exit.seq}: task code called Deno.exit(3)`]);
    assert.deepEqual(outcomes.map((o) => [o.seq, o.ok]), [[second.seq, true]]);
  } finally {
    await pool.close();
  }
});

/** Run `batch` on a pool of one Web Worker; what it reports until it reports a loss. */
async function runUntilLost(batch: ReturnType<typeof poolRunRequest>[]) {
  const outcomes: RunOutcome[] = [];
  const lost = Promise.withResolvers<{ seqs: number[]; reason: string; notStarted?: number[] }>();
  const after = poolRunRequest("x.wid", ["after"]);
  const replaced = Promise.withResolvers<void>();
  const pool = new ThreadPool({ size: 1, slots: 8, module: APP, config: {} }, {
    onOutcomes: (o) => {
      if (o.some((x) => x.seq === after.seq)) replaced.resolve();
      outcomes.push(...o.filter((x) => x.seq !== after.seq));
    },
    onPublish: () => Promise.resolve(),
    onLost: (seqs, reason, notStarted) => lost.resolve({ seqs, reason, notStarted }),
    onTimeLimit: () => {},
  });
  await pool.start();
  const timer = setTimeout(() => lost.reject(new Error("no loss reported in 15 s")), 15_000);
  try {
    pool.run(batch);
    const report = await lost.promise;
    // Its replacement runs what follows.
    pool.run([after]);
    await replaced.promise;
    return { outcomes: outcomes.map((o) => [o.seq, o.ok]), ...report };
  } finally {
    clearTimeout(timer);
    await pool.close();
  }
}

for (
  const [how, called] of [["exit", "Deno.exit(3)"], ["close", "close()"], [
    "process",
    "Deno.exit(4)",
  ]]
) {
  Deno.test(`task exit: ${called} leaves the outcomes of the tasks that finished before it in its batch`, async () => {
    const sync = poolRunRequest("x.wid", ["sync"]);
    const async = poolRunRequest("x.wid_async", ["async"]);
    const exit = poolRunRequest("x.exit", [how, 0]);
    const next = poolRunRequest("x.wid", ["next"]);
    const report = await runUntilLost([sync, async, exit, next]);
    assert.deepEqual(report.outcomes, [[sync.seq, true], [async.seq, true]], "finished: not lost");
    assert.deepEqual(report.seqs, [exit.seq], "only the task that ended its thread is lost");
    assert.equal(report.reason, `task code called ${called}`);
    assert.deepEqual(report.notStarted, [next.seq], "the task after it did not start: handed on");
  });
}

Deno.test("task exit: a task that catches what Deno.exit() throws is lost all the same, the thread ends", async () => {
  const before = poolRunRequest("x.wid", ["before"]);
  const exit = poolRunRequest("x.exit_caught", ["exit"]);
  const report = await runUntilLost([before, exit]);
  assert.deepEqual(report.outcomes, [[before.seq, true]]);
  assert.deepEqual(report.seqs, [exit.seq]);
  assert.equal(report.reason, "task code called Deno.exit(3)");
});

Deno.test("task exit: Deno.exit() in an afterReturn hook keeps the task's outcome and ends the thread", async () => {
  const hook = poolRunRequest("x.exit_after_return", []);
  const next = poolRunRequest("x.wid", ["next"]);
  const report = await runUntilLost([hook, next]);
  // Its handler had returned (Celery stores the result before after_return): SUCCESS stands.
  assert.deepEqual(report.outcomes, [[hook.seq, true]]);
  assert.deepEqual(report.seqs, []);
  assert.equal(report.reason, "task code called Deno.exit(6)");
  assert.deepEqual(report.notStarted, [next.seq]);
});

Deno.test("task exit: what Deno.exit() throws in a hook is logged as ending the Web Worker, not as a hook failure", async () => {
  const app = new Celery();
  const task = app.task("x.hook_exit", {
    afterReturn: () => {
      throw new ExitCalled("Deno.exit(6)");
    },
  }, () => 1);
  const records = await captureLogs("info");
  try {
    const info = { id: "t1", name: "x.hook_exit", args: [], kwargs: {}, retries: 0 };
    const hooks = runHooks(task as unknown as Task<never, unknown>, info, undefined);
    await hooks!.success(1);
    const lines = records.map(logLine);
    assert.ok(
      lines.some((l) =>
        /afterReturn of x\.hook_exit.* called Deno\.exit\(6\): its Web Worker ends; the task's outcome stands/
          .test(l)
      ),
      lines.join("\n"),
    );
    assert.ok(!lines.some((l) => /failed/.test(l)), lines.join("\n"));
  } finally {
    await reset();
    await app.close();
  }
});

Deno.test("task exit: Deno.exit() from a timer ends the thread as from a handler, not as an uncaught error", async () => {
  const nap = poolRunRequest("x.nap", [60_000]);
  const later = poolRunRequest("x.exit_later", [50]);
  const report = await runUntilLost([nap, later]);
  assert.deepEqual(report.outcomes, [[later.seq, true]]);
  assert.deepEqual(report.seqs, [nap.seq], "the task still running is lost with the thread");
  assert.equal(report.reason, "task code called Deno.exit(3)");
});

Deno.test("task exit: a Web Worker that exits holding an outcome it cannot post fails that task, reports the loss", async () => {
  const path = `${await Deno.makeTempDir({ prefix: "task-exit-" })}/go`;
  const exit = poolRunRequest("x.exit_after_unclonable", []);
  const after = poolRunRequest("x.wid", ["after"]);
  const lost = Promise.withResolvers<{ seqs: number[]; reason: string; notStarted?: number[] }>();
  const outcomes: RunOutcome[] = [];
  const pool = new ThreadPool({ size: 1, slots: 4, module: APP, config: {} }, {
    onOutcomes: (o) => outcomes.push(...o),
    onPublish: () => Promise.resolve(),
    onLost: (seqs, reason, notStarted) => lost.resolve({ seqs, reason, notStarted }),
    onTimeLimit: () => {},
  });
  await pool.start();
  const timer = setTimeout(() => lost.reject(new Error("no loss reported in 15 s")), 15_000);
  try {
    // Linked to x.wid, its result not stored (so not encoded): its outcome carries the value as returned.
    const link = {
      task: "x.wid",
      args: [],
      kwargs: {},
      options: {},
      subtask_type: null,
      immutable: false,
    };
    const unclonable = {
      ...messageRunRequest({
        task: "x.unclonable",
        id: crypto.randomUUID(),
        args: [path],
        kwargs: {},
        embed: { callbacks: [link] },
        now: new Date(),
        origin: "t@local",
        replyTo: "r",
      }),
      seq: nextSeq(),
      storeResult: false,
    };
    pool.run([exit]);
    pool.run([unclonable]);
    while (!(await exists(`${path}.started`))) await new Promise((r) => setTimeout(r, 20));
    // Sent while the Web Worker is blocked: the outcome of x.unclonable is held for the next post.
    pool.run([after]);
    await Deno.writeTextFile(path, "");
    const { seqs, reason, notStarted } = await lost.promise;
    assert.deepEqual(seqs, [exit.seq]);
    assert.equal(reason, "task code called Deno.exit(3)");
    // Posted before the thread ended, as the failure it is (see unpostable_outcome_test.ts).
    assert.deepEqual(outcomes.map((o) => [o.seq, o.ok, o.exc?.exc_type]), [
      [unclonable.seq, false, "EncodeError"],
    ]);
    assert.deepEqual(notStarted, [after.seq], "the task it had not started is to be put back");
  } finally {
    clearTimeout(timer);
    await pool.close();
    await Deno.remove(path.slice(0, -"/go".length), { recursive: true });
  }
});

test("Deno.exit() in a Web Worker: WorkerLostError, the tasks it had not started run on its replacement", async () => {
  await withWorker({}, async (client, worker) => {
    const before = await (await client.sendTask<Wid>("x.wid", ["before"])).get({ timeout: 15_000 });
    // It holds its thread 600 ms before exiting: the tasks sent meanwhile wait behind it.
    const exit = await client.sendTask("x.exit", ["exit", 600]);
    await new Promise((r) => setTimeout(r, 150));
    const after = await Promise.all(
      [1, 2, 3].map((i) => client.sendTask<Wid>("x.wid", [i])),
    );
    const err = await taskFailure(exit.get({ timeout: 15_000 }));
    assert.equal(err.excType, "WorkerLostError");
    assert.match(String(err.excMessage[0]), /Deno\.exit\(3\)/);
    const results = await Promise.all(after.map((r) => r.get({ timeout: 15_000 })));
    assert.deepEqual(results.map((r) => r.tag), [1, 2, 3], "none lost");
    for (const r of results) assert.notEqual(r.wid, before.wid, "run on the replacement");
    assert.equal(worker.stats.failed, 1);
    assert.equal(worker.stats.succeeded, 4);
  });
});

test("a Web Worker's death is logged as interrupting its tasks, then each task's outcome", async () => {
  const dir = await Deno.makeTempDir({ prefix: "task-exit-" });
  const records = await captureLogs("warning");
  try {
    await withWorker({}, async (client) => {
      const failed = await client.sendTask("x.exit", ["exit", 0]);
      assert.equal((await taskFailure(failed.get({ timeout: 15_000 }))).excType, "WorkerLostError");
      const requeued = await client.sendTask<Wid>("x.exit_once", [`${dir}/ran`]);
      assert.equal((await requeued.get({ timeout: 15_000 })).tag, "again", "requeued, run again");
      const lines = records.map(logLine);
      const deaths = lines.filter((l) => l.includes("A Web Worker died"));
      assert.equal(deaths.length, 2, lines.join("\n"));
      for (const [d, id] of [[deaths[0], failed.id], [deaths[1], requeued.id]]) {
        assert.ok(
          d.startsWith(
            "error A Web Worker died (task code called Deno.exit(3)); 1 task(s) interrupted (",
          ) && d.includes(`[${id}]`),
          d,
        );
        assert.doesNotMatch(d, /lost \(/, "the line says nothing was lost");
      }
      assert.ok(
        lines.includes(
          `error Task x.exit[${failed.id}] failed with WorkerLostError: its Web Worker died ` +
            "(task code called Deno.exit(3))",
        ),
        lines.join("\n"),
      );
      assert.ok(
        lines.includes(
          `warning Task x.exit_once[${requeued.id}] requeued: its Web Worker died ` +
            "(task code called Deno.exit(3))",
        ),
        lines.join("\n"),
      );
    });
  } finally {
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});

test("close() and node:process exit() in a Web Worker: WorkerLostError, the worker goes on", async () => {
  await withWorker({ concurrency: 2 }, async (client, worker) => {
    for (const how of ["close", "process"]) {
      const err = await taskFailure(
        (await client.sendTask("x.exit", [how, 0])).get({ timeout: 15_000 }),
      );
      assert.equal(err.excType, "WorkerLostError", how);
      const code = how === "close" ? /close\(\)/ : /Deno\.exit\(4\)/;
      assert.match(String(err.excMessage[0]), code);
    }
    // Both Web Workers serve again: 20 naps side by side end on two of them.
    const naps = await Promise.all(
      Array.from({ length: 20 }, () => client.sendTask<{ wid: string }>("x.nap", [50])),
    );
    const wids = new Set(
      (await Promise.all(naps.map((r) => r.get({ timeout: 15_000 })))).map((r) => r.wid),
    );
    assert.equal(wids.size, 2);
    assert.equal(worker.stats.failed, 2);
    assert.equal(worker.stats.succeeded, 20);
  });
});

test("the command line worker logs the exit, runs what follows and stops on one SIGTERM", async () => {
  const queue = `xq-${crypto.randomUUID().slice(0, 8)}`;
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const proc = await celeriacWorker(
    celeriacWorkerArgs({ app: "tests/apps/exit_app.ts", url, queue }, ["-l", "INFO"]),
  );
  try {
    const exit = await client.sendTask("x.exit", ["exit", 0]);
    const after = await Promise.all([1, 2].map((i) => client.sendTask<Wid>("x.wid", [i])));
    const err = await taskFailure(exit.get({ timeout: 15_000 }));
    assert.equal(err.excType, "WorkerLostError");
    const results = await Promise.all(after.map((r) => r.get({ timeout: 15_000 })));
    assert.deepEqual(results.map((r) => r.tag), [1, 2]);
    await proc.waitFor(/A Web Worker died \(task code called Deno\.exit\(3\)\)/, 5_000);
  } finally {
    const status = await proc.stop("SIGTERM", 10_000);
    await client.close();
    assert.equal(status.signal, null, `a warm shutdown ends it:\n${proc.output}`);
  }
});

test("inline pool: an unhandled rejection and a throw from a timer are logged, no task is lost", async () => {
  const queue = `xq-${crypto.randomUUID().slice(0, 8)}`;
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const proc = await celeriacWorker(
    celeriacWorkerArgs({ app: "tests/apps/exit_app.ts", url, queue }, [
      "-P",
      "inline",
      "-l",
      "INFO",
    ]),
  );
  let exited: Deno.CommandStatus | null = null;
  proc.child.status.then((s) => exited = s);
  try {
    // Running while the errors strike: they end when the process would have.
    const naps = await Promise.all([0, 1].map(() => client.sendTask("x.nap", [1500])));
    await new Promise((r) => setTimeout(r, 300));
    const unhandled = await client.sendTask("x.unhandled", []);
    const later = await client.sendTask("x.throw_later", []);
    assert.equal(await unhandled.get({ timeout: 15_000 }), 1);
    assert.equal(await later.get({ timeout: 15_000 }), 1);
    for (const r of naps) await r.get({ timeout: 15_000 });
    const after = await client.sendTask<Wid>("x.wid", ["after"]);
    assert.equal((await after.get({ timeout: 15_000 })).tag, "after");
    await proc.waitFor(
      new RegExp(
        `unhandled rejection \\(task x\\.unhandled\\[${unhandled.id}\\]\\): .*background rejection`,
      ),
      5_000,
    );
    await proc.waitFor(
      new RegExp(
        // A timer's callback runs in its task's async context, but the error event after it does not.
        `uncaught error: Error: thrown from a timer\\n\\s+at [^\\n]*exit_app\\.ts`,
      ),
      5_000,
    );
    assert.equal(exited, null, "the worker still runs");
  } finally {
    const status = await proc.stop("SIGTERM", 10_000);
    await client.close();
    assert.equal(status.code, 0, `a warm shutdown ends it:\n${proc.output}`);
  }
});

Deno.test({ name: "task exit: clean up", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(prefix);
});
