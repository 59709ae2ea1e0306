/**
 * The default prefetch does not hoard: two workers sharing a queue split a
 * burst of long CPU-bound tasks, while short tasks still open the window wide
 * (fast drains). `--prefetch-multiplier` / `--prefetch` fix it.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import {
  BlockingAverage,
  BlockingByName,
  MAX_NAMES,
  messagesOf,
} from "../src/worker/blocking_time.ts";
import { PrefetchWindow, REFILL_WAIT_MS } from "../src/worker/prefetch_window.ts";
import { Worker } from "../src/worker/worker.ts";
import { app as tasksApp } from "./apps/first_contact_app.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test("prefetch window: 4 per Web Worker at first, wide for short tasks, 1 for long ones", () => {
  const w = new PrefetchWindow({ size: 2, max: 32 });
  assert.equal(w.limit, 8, "Celery's default multiplier (4) until a task has finished");
  w.observe([{ blocked: 0.05 }, { blocked: 0.02 }]);
  assert.equal(w.limit, 64);
  w.observe(Array.from({ length: 30 }, () => ({ blocked: 400 })));
  assert.equal(w.perWorker, 1);
  w.observe(Array.from({ length: 60 }, () => ({ blocked: 5 })));
  const tasks5ms = w.perWorker; // one running, about 50 ms waiting: 1 + 9 or 10 tasks of 5 ms
  assert.ok(tasks5ms >= 10 && tasks5ms <= 11, `${tasks5ms}`);
  w.observe([{}]); // outcomes without a measurement change nothing
  assert.equal(w.perWorker, tasks5ms);
  const fixed = new PrefetchWindow({ size: 3, max: 32, fixed: 8 });
  assert.equal(fixed.limit, 24);
  assert.equal(fixed.refill, 1);
  fixed.observe([{ blocked: 1000 }]);
  assert.equal(fixed.limit, 24);
  let webWorkers = 1;
  const resizable = new PrefetchWindow({ size: () => webWorkers, max: 32, fixed: 2 });
  assert.equal(resizable.limit, 2);
  webWorkers = 3; // pool_grow 2
  assert.equal(resizable.limit, 6, "the window follows the pool's size");
});

Deno.test("blocking time: a running average of finished tasks, null until one has a measurement", () => {
  const avg = new BlockingAverage();
  assert.equal(avg.ms, null);
  avg.observe([{}]);
  assert.equal(avg.ms, null, "an outcome without `blocked` is skipped");
  avg.observe([{ blocked: 5 }]);
  assert.equal(avg.ms, 5);
  avg.observe([{ blocked: 0 }]);
  assert.ok(avg.ms! > 0 && avg.ms! < 5, `${avg.ms}: moves toward the newest, smoothed`);
  const one = new BlockingAverage();
  one.observeOne(5);
  one.observeOne(0);
  assert.equal(one.ms, avg.ms, "observeOne is observe of one outcome");
});

Deno.test("blocking time by name: each task name its own average, null for one not seen, bounded", () => {
  const byName = new BlockingByName();
  for (let i = 0; i < 50; i++) byName.observe("t.short", 0.01);
  byName.observe("t.long", 50);
  byName.observe("t.skipped", undefined);
  assert.equal(byName.ms("t.short"), 0.01);
  assert.equal(byName.ms("t.long"), 50, "not pulled down by the short ones");
  assert.equal(byName.ms("t.skipped"), null, "an outcome without `blocked` is skipped");
  assert.equal(byName.ms("t.never"), null);
  for (let i = 0; i < MAX_NAMES; i++) byName.observe(`t.${i}`, 1);
  assert.equal(byName.ms("t.short"), null, "the oldest name seen is forgotten first");
  assert.equal(byName.ms(`t.${MAX_NAMES - 1}`), 1);
});

Deno.test("blocking time: tasks of a Web Worker go about 1 ms of blocking work to a message", () => {
  const tasks = [1, 2, 3, 4, 5];
  const all = (ms: number | null) => () => ms;
  assert.deepEqual(messagesOf(tasks, all(null)), [tasks], "unknown: one message");
  assert.deepEqual(messagesOf(tasks, all(0.01)), [tasks], "short tasks: one message");
  assert.deepEqual(messagesOf(tasks, all(5)), [[1], [2], [3], [4], [5]], "5 ms tasks: one each");
  assert.deepEqual(messagesOf(tasks, all(0.4)), [[1, 2], [3, 4], [5]], "0.4 ms tasks: two each");
  assert.deepEqual(messagesOf(tasks, all(0.1)), [tasks], "0.1 ms tasks: all five");
  assert.deepEqual(messagesOf(tasks, all(0)), [tasks], "a zero average still batches");
  assert.deepEqual(messagesOf([7], all(50)), [[7]]);
  const mixed = (t: number) => t === 3 ? 5 : 0.01;
  assert.deepEqual(
    messagesOf(tasks, mixed),
    [[1, 2], [3], [4, 5]],
    "a long task among short ones: its own message",
  );
});

Deno.test({
  name: "prefetch: two workers -c 1 split a burst of eight 400 ms CPU-bound tasks",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("prefetch");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `prefetch-${crypto.randomUUID().slice(0, 8)}`;
  tasksApp.configure({ broker: url, backend: url, defaultQueue: queue });
  const module = new URL("./apps/first_contact_app.ts", import.meta.url).href;
  const workers = ["a", "b"].map((n) =>
    new Worker({
      app: tasksApp,
      appModule: module,
      queues: [queue],
      concurrency: 1,
      hostname: `prefetch-${n}@test`,
      remoteControl: false,
    })
  );
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  try {
    for (const w of workers) await w.start();
    const sent = await Promise.all(
      Array.from({ length: 8 }, () => client.sendTask<string>("fc.spin", [400])),
    );
    const ranOn = await Promise.all(sent.map((r) => r.get({ timeout: 60_000 })));
    const counts = { a: 0, b: 0 };
    for (const h of ranOn) counts[h === "prefetch-a@test" ? "a" : "b"]++;
    // Hoarding gave 8 / 0; a shared burst gives about 4 / 4.
    assert.ok(counts.a >= 2 && counts.b >= 2, `split ${JSON.stringify(counts)}`);
  } finally {
    for (const w of workers) await w.stop();
    await client.close();
    await tasksApp.close();
    await deleteKeys(prefix);
  }
});

Deno.test("prefetch window: CPU-bound tasks are taken about half a window at a time, others one slot at a time", () => {
  const w = new PrefetchWindow({ size: 2, max: 32 });
  assert.equal(w.refill, 1, "nothing known yet");
  w.observe([{ blocked: 0.05 }]);
  assert.equal(w.refill, 1, "short tasks: the window is open");
  w.observe(Array.from({ length: 60 }, () => ({ blocked: 5 })));
  // About 25 ms of blocking work finished across the 2 Web Workers: 10 tasks of 5 ms, half the window.
  assert.ok(
    w.refill >= 9 && w.refill <= 11 && w.refill <= w.limit / 2,
    `${w.refill} of ${w.limit}`,
  );
  w.observe(Array.from({ length: 60 }, () => ({ blocked: 40 })));
  assert.equal(w.limit, 4);
  assert.equal(w.refill, 1, "40 ms tasks: a take as each finishes, not 80 ms of work later");
  w.observe(Array.from({ length: 60 }, () => ({ blocked: 400 })));
  assert.equal(w.limit, 2);
  assert.equal(w.refill, 1, "long tasks: one per Web Worker, taken as each finishes");
  const fixed = new PrefetchWindow({ size: 2, max: 32, fixed: 8 });
  fixed.observe(Array.from({ length: 60 }, () => ({ blocked: 5 })));
  assert.equal(fixed.refill, 1, "--prefetch-multiplier keeps Celery's behaviour");
});

Deno.test("prefetch window: the wait for a refill ends at most REFILL_WAIT_MS after a slot freed", () => {
  const w = new PrefetchWindow({ size: 2, max: 32 });
  w.observe(Array.from({ length: 60 }, () => ({ blocked: 5 })));
  const slots = w.limit;
  assert.equal(w.wait(0, slots, 0), Infinity, "no slot free");
  assert.equal(w.wait(w.refill, slots, 0), 0, "a refill's worth free: take");
  assert.equal(w.wait(3, slots, 100), REFILL_WAIT_MS, "3 free: wait for more");
  assert.equal(w.wait(4, slots, 110), REFILL_WAIT_MS - 10, "counted from the first free slot");
  assert.equal(w.wait(4, slots, 100 + REFILL_WAIT_MS), 0, "the slots may never free: take");
  assert.equal(w.wait(1, slots, 200), REFILL_WAIT_MS, "a new wait after the take");
  assert.equal(w.wait(0, slots, 210), Infinity);
  assert.equal(w.wait(1, slots, 300), REFILL_WAIT_MS, "a full window starts the wait afresh");
  assert.equal(w.wait(1, 1, 300), 0, "a window of 1 takes its slot");
  assert.equal(new PrefetchWindow({ size: 2, max: 32, fixed: 4 }).wait(1, 8, 0), 0);
});

Deno.test({
  name: "prefetch: slots held by long awaiting tasks do not keep a CPU-bound worker from taking",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("prefetch");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = `prefetch-${crypto.randomUUID().slice(0, 8)}`;
  tasksApp.configure({ broker: url, backend: url, defaultQueue: queue });
  const worker = new Worker({
    app: tasksApp,
    appModule: new URL("./apps/first_contact_app.ts", import.meta.url).href,
    queues: [queue],
    concurrency: 1,
    hostname: "prefetch-naps@test",
    remoteControl: false,
  });
  const client = new Celery({ broker: url, backend: url, defaultQueue: queue });
  const spins = () => Array.from({ length: 40 }, () => ({ name: "fc.spin", args: [5] }));
  try {
    await worker.start();
    // 5 ms CPU-bound tasks narrow the window to at most 11 (fewer when a loaded host stretches
    // them), taken again once about half of it is free.
    await Promise.all((await client.sendMany(spins())).map((r) => r.get({ timeout: 30_000 })));
    // More naps than the window: it fills with them. Two end after 1 s, the rest after 30 (the
    // worker is terminated long before): on a loaded host the wait below for a stable count can
    // take its 5 s, and a 6 s nap then ended before the freed slots were looked at.
    const naps = await client.sendMany([
      { name: "fc.nap", args: [1000] },
      { name: "fc.nap", args: [1000] },
      ...Array.from({ length: 15 }, () => ({ name: "fc.nap", args: [30_000] })),
    ]);
    let napping = -1;
    for (
      let stable = 0, until = Date.now() + 5000;
      (stable < 30 || napping < 3) && Date.now() < until;
    ) {
      stable = worker.active === napping ? stable + 1 : 0;
      napping = worker.active;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(napping > 2 && napping < 17, `the window filled with naps (${napping} running)`);
    await Promise.all(naps.slice(0, 2).map((r) => r.get({ timeout: 30_000 })));
    // Two slots of the window are free now, fewer than the refill: the worker takes again
    // within REFILL_WAIT_MS, before a long nap ends and frees more. Two, not one: each nap's
    // blocking time counts too, and on a loaded host (CI at load 9 on 2 cores) a nap preempted
    // before its await may narrow the window by one, leaving no slot free when only one ended.
    const longNap = naps[2]!;
    let took = false;
    while (!await longNap.ready()) {
      if (worker.active > napping - 2) {
        took = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(
      took,
      `${worker.active} of ${napping} slots busy once a long nap ended: the freed slots were not ` +
        "taken before",
    );
  } finally {
    await worker.terminate();
    await client.close();
    await tasksApp.close();
    await deleteKeys(prefix);
  }
});
