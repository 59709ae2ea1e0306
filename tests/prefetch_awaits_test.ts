/**
 * Tasks that await first and compute after (I/O, then CPU) are not taken
 * as short: their CPU time across awaits counts, so a worker does not hoard
 * them (a second worker gets its share; a worker killed with early ack
 * loses only what its narrow window held), and the threads pool spreads
 * them over its Web Workers.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { BatchRunner } from "../src/worker/batch_runner.ts";
import { CpuShares, threadCpuClock } from "../src/worker/cpu_share.ts";
import type { RunOutcome } from "../src/worker/executor.ts";
import { ThreadPool } from "../src/worker/thread_pool.ts";
import { Worker } from "../src/worker/worker.ts";
import { app as tasksApp } from "./apps/first_contact_app.ts";
import { poolRunRequest } from "./helpers/run_info.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name:
    "prefetch: a -c 1 worker does not hoard tasks that await then compute; a late worker shares",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("prefetch-awaits");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `prefetch-awaits-${crypto.randomUUID().slice(0, 8)}`;
  tasksApp.configure({ broker: url, backend: url, defaultQueue: queue });
  const module = new URL("./apps/first_contact_app.ts", import.meta.url).href;
  const worker = (n: string) =>
    new Worker({
      app: tasksApp,
      appModule: module,
      queues: [queue],
      concurrency: 1,
      hostname: `awaits-${n}@test`,
      remoteControl: false,
    });
  const a = worker("a");
  const b = worker("b");
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const burst = (n: number) =>
    client.sendMany(
      Array.from({ length: n }, () => ({ name: "fc.nap_then_spin", args: [5, 50] })),
    );
  try {
    await a.start();
    // The worker learns what these tasks cost: each 50 ms of CPU after a 5 ms await.
    await Promise.all((await burst(8)).map((r) => r.get({ timeout: 60_000 })));
    const sent = await burst(24);
    let held = 0;
    const until = Date.now() + 300;
    while (Date.now() < until) {
      held = Math.max(held, a.active);
      await sleep(10);
    }
    // Measured only until its first await, a task looked like a no-op: the window opened to 64
    // and the worker took all 24, running them at once (all lost to a kill with early ack).
    assert.ok(held <= 6, `a -c 1 worker held ${held} of 24 tasks of 50 ms CPU each`);
    await b.start();
    // On a loaded host the second worker can take a second to start while the first runs on:
    // its fair share is of what was still unfinished when it was ready, less what the first holds.
    const unfinished = (await Promise.all(sent.map((r) => r.ready()))).filter((done) => !done)
      .length;
    const ranOn = await Promise.all(sent.map((r) => r.get({ timeout: 60_000 })));
    const onB = ranOn.filter((h) => (h as string[])[0] === "awaits-b@test").length;
    // A hoarding first worker holds all 24, so the one that joined runs none of them.
    const share = Math.min(6, Math.floor((unfinished - 7) / 2));
    assert.ok(
      onB >= share,
      `the worker that joined ran ${onB} of 24 (${unfinished} unfinished when it was ready)`,
    );
  } finally {
    await a.stop();
    await b.stop();
    await client.close();
    await tasksApp.close();
    await deleteKeys(prefix);
  }
});

Deno.test("CPU shares: the thread's CPU time past the first runs is shared among the tasks that await", () => {
  let cpu = 100;
  const shares = new CpuShares(() => cpu);
  shares.start();
  cpu += 0.01;
  shares.awaiting(1);
  cpu += 0.01;
  shares.awaiting(2);
  shares.end();
  cpu += 40; // both awaited at once, then computed 40 ms between them
  const first = [{ seq: 1, blocked: 0.01 }];
  shares.settle(first);
  assert.equal(Math.round(first[0].blocked * 100) / 100, 20.01, "its first run plus half of 40 ms");
  shares.start();
  cpu += 30; // a synchronous task's start: its own run is not shared
  shares.end();
  cpu += 10;
  const rest: Pick<RunOutcome, "seq" | "blocked">[] = [
    { seq: 2, blocked: 0.01 },
    { seq: 3, blocked: 30 },
  ];
  shares.settle(rest);
  assert.equal(Math.round(rest[0].blocked! * 100) / 100, 30.01, "20 ms, then the next 10 alone");
  assert.equal(rest[1].blocked, 30, "a synchronous task keeps its own run");
  cpu += 50; // nothing in flight: given to no task
  shares.start();
  cpu += 2;
  shares.awaiting(4);
  shares.end();
  const unrun: Pick<RunOutcome, "seq" | "blocked">[] = [{ seq: 4 }];
  cpu += 5;
  shares.settle(unrun);
  assert.equal(unrun[0].blocked, undefined, "an outcome without a first run stays without");
  shares.start();
  shares.awaiting(5);
  shares.end();
  const idle = [{ seq: 5, blocked: 0 }];
  shares.settle(idle);
  assert.equal(idle[0].blocked, 0, "the 50 ms before it started are not its");
});

Deno.test("CPU shares: a task's CPU time after its await reaches its outcome's blocking time", async () => {
  const clock = threadCpuClock();
  if (!clock) return; // not Linux, or no read access to /proc
  const outcomes: RunOutcome[] = [];
  const runner = new BatchRunner((o) => outcomes.push(...o), {}, undefined, new CpuShares(clock));
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  app.task("t.nap_then_spin", async () => {
    await sleep(5);
    const end = clock() + 30;
    while (clock() < end) {
      // 30 ms of this thread's CPU time
    }
  });
  runner.run(app.tasks, [poolRunRequest("t.nap_then_spin", [])]);
  const until = Date.now() + 10_000;
  while (!outcomes.length && Date.now() < until) await sleep(5);
  assert.ok(outcomes[0]?.ok, JSON.stringify(outcomes[0]));
  const blocked = outcomes[0].blocked!;
  assert.ok(blocked >= 30 && blocked < 60, `${blocked} ms: measured until the await, it was ~0`);
  await app.close();
});

Deno.test("thread pool: tasks that await then compute go to both Web Workers of two", async () => {
  const outcomes: RunOutcome[] = [];
  const p = new ThreadPool(
    {
      size: 2,
      slots: 8,
      module: new URL("./apps/first_contact_app.ts", import.meta.url).href,
      exportName: "app",
      config: {},
    },
    {
      onOutcomes: (o) => outcomes.push(...o),
      onPublish: () => Promise.resolve(),
      onLost: (seqs, reason) => assert.fail(`lost ${seqs}: ${reason}`),
      onTimeLimit: () => assert.fail("no time limit is set"),
    },
  );
  const settled = async (n: number) => {
    const until = Date.now() + 30_000;
    while (outcomes.length < n && Date.now() < until) await sleep(5);
    assert.equal(outcomes.length, n);
  };
  try {
    await p.start();
    const run = (n: number) =>
      p.run(Array.from({ length: n }, () => poolRunRequest("fc.nap_then_spin", [5, 40])));
    // The pool learns what they cost (past a fresh Web Worker's first, slower runs).
    for (let n = 4; n <= 20; n += 4) {
      run(4);
      await settled(n);
    }
    run(6);
    await settled(26);
    const copies = new Map<string, number>();
    for (const o of outcomes.slice(20)) {
      const copy = JSON.parse(o.meta!).result[1] as string;
      copies.set(copy, (copies.get(copy) ?? 0) + 1);
    }
    // Measured until their first await they looked like no-ops: all six went to one Web Worker.
    assert.deepEqual([...copies.values()].sort(), [3, 3], JSON.stringify([...copies]));
  } finally {
    await p.close();
  }
});
