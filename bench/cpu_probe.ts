// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/cpu_probe.ts`: where workload D's efficiency goes.
 * Starts a Celeriac worker as the bench does (`-c 2`, the bench's app and
 * V8 flags), waits until it is ready, enqueues N `bench.spin_timed(MS)`
 * tasks (the bench's `bench.spin`, returning when it ran and on which Web
 * Worker) in a queue the worker does not consume, gives them all to it at
 * once (RENAME: the clock starts there), polls the result count every 20 ms (as the bench)
 * until N, and prints:
 *
 * - efficiency as the bench defines it (N × MS / 2 cores / wall time),
 *   here from the RENAME rather than from the first take, and the loss
 *   split per Web Worker into lead (clock start → its first task), gaps
 *   between consecutive tasks (by size, and how much of them the thread
 *   waited on a run queue, from its own schedstat read by the task), tail
 *   (its last task's end → the last result seen) and overrun (tasks longer
 *   than MS: the spin is by wall clock, so a thread off its CPU when the
 *   time is up ends late);
 * - per thread of the worker (main, each Web Worker, V8 helpers, Tokio),
 *   of Redis (its pid from `INFO server`) and of this process: CPU time
 *   and time spent waiting on a run queue during the drain, from
 *   `/proc/<pid>/task/<tid>/schedstat`, and the whole machine's busy time
 *   from `/proc/stat` (the rest is other processes).
 *
 * Options: `--tasks N` (2000), `--ms MS` (5), `--prefetch N` (the
 * worker's, default its own), `--time-limit S` / `--soft-time-limit S` (the
 * worker's: every task limited; default none), `--v8-flags F` (the bench's default),
 * `--redis URL` (db 12 = broker, db 13 = results, both FLUSHDB'd),
 * `--json FILE` (write the figures), `--sample` (the worker runs with the
 * V8 inspector on and its main thread's CPU profile during the drain is
 * summarized by stage and function, as `bench/profile.ts` does; the
 * profiler's own cost shows in that run's figures), `--save FILE` (with
 * `--sample`: the `.cpuprofile`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CONCURRENCY, DEFAULT_V8_FLAGS } from "./common.ts";
import { type CpuProfile, Inspector, summarize } from "./profile.ts";
import { startBenchWorker, stopTree, threadSchedstats } from "./proc.ts";
import { BENCH_QUEUE, spinTimed } from "./tasks.ts";
import { openProbeDbs } from "./probe_dbs.ts";

/** The queue the worker consumes: the tasks are renamed into it at once. */
const DRAIN_QUEUE = `${BENCH_QUEUE}.drain`;
/** Cores the bench's ideal time assumes (the worker's `-c`). */
const CORES = CONCURRENCY;

/** Scheduler figures of one thread, in ns (schedstat: on CPU, waiting on a run queue, slices). */
interface Sched {
  name: string;
  cpu: number;
  wait: number;
  slices: number;
}

/** Schedstat of every thread of `pid`, by tid. */
function sched(pid: number): Map<string, Sched> {
  return new Map(
    [...threadSchedstats(pid)].map(([tid, t]) => [
      tid,
      { name: tid === String(pid) ? "main" : t.comm, cpu: t.cpu, wait: t.wait, slices: t.slices },
    ]),
  );
}

/** Per-thread differences `after - before`, grouped by thread name. */
function schedDelta(before: Map<string, Sched>, after: Map<string, Sched>): Sched[] {
  const byName = new Map<string, Sched>();
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { cpu: 0, wait: 0, slices: 0 };
    const key = /^(V8 |tokio)/.test(a.name) ? a.name.replace(/[- #]?\d+$/, "") : a.name;
    const s = byName.get(key) ?? { name: key, cpu: 0, wait: 0, slices: 0 };
    s.cpu += a.cpu - b.cpu;
    s.wait += a.wait - b.wait;
    s.slices += a.slices - b.slices;
    byName.set(key, s);
  }
  return [...byName.values()].sort((x, y) => y.cpu - x.cpu);
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
function machine(): { busy: number; total: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0;
}

/** What `bench.spin_timed` returns: thread tag, start, end (epoch ms), run-queue wait (ns) at both. */
type Run = [string, number, number, number, number];

/** One Web Worker's tasks laid out in time, in ms. */
interface Lane {
  tag: string;
  tasks: number;
  busy: number;
  lead: number;
  tail: number;
  gaps: number[];
  /** Of the gaps: time waiting on a run queue. */
  gapWait: number;
  /** Run-queue wait during the tasks themselves (a wall-clock spin does not lose it, unless it spans the end). */
  taskWait: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      tasks: { type: "string", default: "2000" },
      ms: { type: "string", default: "5" },
      prefetch: { type: "string" },
      "v8-flags": { type: "string", default: DEFAULT_V8_FLAGS },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
      json: { type: "string" },
      sample: { type: "boolean", default: false },
      save: { type: "string" },
      "time-limit": { type: "string" },
      "soft-time-limit": { type: "string" },
    },
  });
  const port = 9400 + Math.floor(Math.random() * 500);
  const n = Number(values.tasks);
  const ms = Number(values.ms);
  const dbs = await openProbeDbs(values.redis);
  const { brokerUrl, backendUrl, broker, results } = dbs;
  const redisPid = Number(/process_id:(\d+)/.exec(await broker.info("server"))?.[1]);
  const { child, ready } = startBenchWorker({
    broker: brokerUrl,
    backend: backendUrl,
    queue: DRAIN_QUEUE,
    denoArgs: [
      ...values.sample ? [`--inspect=127.0.0.1:${port}`] : [],
      ...values["v8-flags"] === "none" ? [] : [`--v8-flags=${values["v8-flags"]}`],
    ],
    workerArgs: [
      ...values.prefetch ? ["--prefetch", values.prefetch] : [],
      ...values["time-limit"] ? ["--time-limit", values["time-limit"]] : [],
      ...values["soft-time-limit"] ? ["--soft-time-limit", values["soft-time-limit"]] : [],
    ],
  });
  try {
    await ready;
    for (let sent = 0; sent < n; sent += 1000) {
      await spinTimed.delayMany(Array.from({ length: Math.min(1000, n - sent) }, () => [ms]));
    }
    await new Promise((r) => setTimeout(r, 500));
    const inspector = values.sample ? await Inspector.open(port) : null;
    if (inspector) {
      await inspector.send("Profiler.enable");
      await inspector.send("Profiler.setSamplingInterval", { interval: 200 });
      await inspector.send("Profiler.start");
    }
    const pids = { worker: child.pid, redis: redisPid, probe: Deno.pid };
    const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, sched(p)]));
    const m0 = machine();
    const t0 = epochNow();
    await broker.rename(BENCH_QUEUE, DRAIN_QUEUE);
    // Another client flushing db 12/13 (profile.ts uses them too) would leave this waiting forever.
    for (let seen = 0, at = performance.now(), now = 0; (now = await results.dbsize()) < n;) {
      if (now > seen) [seen, at] = [now, performance.now()];
      if (performance.now() - at > 30_000) {
        throw new Error(`${now}/${n} results, none new for 30 s`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const t1 = epochNow();
    const m1 = machine();
    const profile = inspector
      ? (await inspector.send<{ profile: CpuProfile }>("Profiler.stop")).profile
      : null;
    inspector?.close();
    const threads = Object.fromEntries(
      Object.entries(pids).map(([k, p]) => [k, schedDelta(before[k], sched(p))]),
    );
    const wall = t1 - t0;

    const runs: Run[] = [];
    const keys = await results.keys("celery-task-meta-*");
    for (let i = 0; i < keys.length; i += 1000) {
      for (const raw of await results.mget(...keys.slice(i, i + 1000))) {
        runs.push(JSON.parse(raw!).result);
      }
    }
    const byTag = Map.groupBy(runs, (r) => r[0]);
    const lanes: Lane[] = [...byTag].map(([tag, rs]) => {
      rs.sort((a, b) => a[1] - b[1]);
      const gaps = rs.slice(1).map((r, i) => r[1] - rs[i][2]);
      return {
        tag,
        tasks: rs.length,
        busy: rs.reduce((s, r) => s + r[2] - r[1], 0),
        lead: rs[0][1] - t0,
        tail: t1 - rs[rs.length - 1][2],
        gaps,
        gapWait: rs.slice(1).reduce((t, r, i) => t + (r[3] - rs[i][4]) / 1e6, 0),
        taskWait: rs.reduce((t, r) => t + (r[4] - r[3]) / 1e6, 0),
      };
    });
    const ideal = n * ms / CORES;
    const pct = (x: number) => `${(100 * x / (CORES * wall)).toFixed(2)} %`;
    console.log(
      `${n} × ${ms} ms on ${lanes.length} Web Worker(s): ${wall.toFixed(0)} ms from RENAME to ` +
        `the last result seen, ideal ${ideal.toFixed(0)} ms: efficiency ${
          (100 * ideal / wall).toFixed(1)
        } % (load average ${Deno.loadavg()[0].toFixed(2)})`,
    );
    console.log(
      `loss, in % of ${CORES} × wall (${lanes.length} lanes; a missing lane is all loss):`,
    );
    let explained = 0;
    for (const l of lanes) {
      const g = [...l.gaps].sort((a, b) => a - b);
      const sum = (f: (x: number) => boolean) => g.filter(f).reduce((a, b) => a + b, 0);
      const overrun = l.busy - l.tasks * ms;
      explained += l.lead + l.tail + sum(() => true) + overrun;
      console.log(
        `  ${l.tag}: ${l.tasks} tasks, busy ${l.busy.toFixed(0)} ms; lead ${pct(l.lead)} ` +
          `(${l.lead.toFixed(1)} ms), gaps ${pct(sum(() => true))} (${g.length}: <0.1 ms ${
            pct(sum((x) => x < 0.1))
          }, 0.1–1 ms ${pct(sum((x) => x >= 0.1 && x < 1))} [${
            g.filter((x) => x >= 0.1 && x < 1).length
          }], ≥1 ms ${pct(sum((x) => x >= 1))} [${g.filter((x) => x >= 1).length}]; p50 ${
            (quantile(g, 0.5) * 1000).toFixed(0)
          } µs, p90 ${(quantile(g, 0.9) * 1000).toFixed(0)} µs, p99 ${
            (quantile(g, 0.99) * 1000).toFixed(0)
          } µs, max ${
            g.length ? g[g.length - 1].toFixed(2) : 0
          } ms; of the gaps: waiting for a CPU ${
            pct(l.gapWait)
          }, running or waiting for a message ${pct(sum(() => true) - l.gapWait)}), tail ${
            pct(l.tail)
          } (${l.tail.toFixed(1)} ms), overrun ${pct(overrun)} (run-queue wait within tasks: ${
            pct(l.taskWait)
          })`,
      );
    }
    console.log(
      `  total ${pct(explained + (CORES - lanes.length) * wall)} (efficiency + loss = ${
        (100 * (ideal / wall) + 100 * (explained + (CORES - lanes.length) * wall) / (CORES * wall))
          .toFixed(1)
      } %)`,
    );
    const machineMs = (m1.busy - m0.busy) * 10;
    let oursMs = 0;
    console.log(`CPU and run-queue wait during the drain (ms; slices = times on a CPU):`);
    for (const [k, list] of Object.entries(threads)) {
      const cpu = list.reduce((s, t) => s + t.cpu, 0) / 1e6;
      oursMs += cpu;
      console.log(
        `  ${k}: CPU ${cpu.toFixed(0)}; ` +
          list.filter((t) => t.cpu > 1e6 || t.wait > 1e6).map((t) =>
            `${t.name} ${(t.cpu / 1e6).toFixed(0)} cpu / ${
              (t.wait / 1e6).toFixed(0)
            } wait / ${t.slices}`
          ).join(", "),
      );
    }
    console.log(
      `  machine busy ${machineMs.toFixed(0)} of ${CORES * wall | 0} (jiffies of 10 ms); ` +
        `other processes ≈ ${(machineMs - oursMs).toFixed(0)}`,
    );
    if (profile) printProfile(profile, n, values.save);
    if (values.json) {
      await Deno.writeTextFile(
        values.json,
        JSON.stringify({ n, ms, wall, ideal, lanes, threads, machineMs }, null, 1),
      );
    }
  } finally {
    await stopTree(child);
    await dbs.close();
  }
}

/** The main thread's profile by stage and top functions, in µs of samples per task. */
function printProfile(profile: CpuProfile, n: number, save: string | undefined): void {
  const { stages, functions, busyUs, totalUs } = summarize(profile);
  const per = (us: number) => `${(us / n).toFixed(1)} µs`;
  console.log(
    `main thread profile: busy ${per(busyUs)} per task of ${
      per(totalUs)
    } sampled (wall-clock samples)`,
  );
  const top = (m: Map<string, number>, k: number) =>
    [...m].filter(([name]) => !/^\((idle|program)\)/.test(name)).sort((a, b) => b[1] - a[1])
      .slice(0, k);
  for (const [stage, us] of top(stages, 12)) console.log(`  ${per(us).padStart(9)}  ${stage}`);
  console.log("top functions (self):");
  for (const [fn, us] of top(functions, 25)) console.log(`  ${per(us).padStart(9)}  ${fn}`);
  if (save) Deno.writeTextFileSync(save, JSON.stringify(profile));
}

if (import.meta.main) await main();
