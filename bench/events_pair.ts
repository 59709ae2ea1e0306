// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/events_pair.ts [--rounds 8] [--tasks 20000] [--base DIR]`: what task
 * events and a dashboard watching cost a drain, alternated. Each round runs
 * the bench's drain A (N no-ops enqueued with `delayMany` into a queue the
 * worker does not consume, given to a fresh ready worker at once by a
 * `RENAME`, done when N results are stored) three times, in an order that
 * rotates from round to round: `off` (the default command), `-E`, and
 * `dashboard` (`-E` and a dashboard, `worker.ts dashboard` as the bench's
 * `--dashboard` starts it, watching). For each drain it reads from `/proc`
 * the CPU time (user + system, all threads) of the worker (by thread kind),
 * of redis-server, of the dashboard (until it has applied the drain's task
 * events) and of this process, and prints them per task, with the drain's
 * throughput, the load average, the dashboard's peak RSS, what it applied
 * and held, and how long after the last result it caught up. The summary
 * gives each mode's medians and the median and range of the per-round
 * ratios and differences against `off`: CPU µs per task moves far less
 * with the rest of a shared host's load than a drain's throughput does.
 *
 * `--modes off,-E,subscriber,dashboard` adds `subscriber`: `-E` with a bare
 * reader of the events (`bench/events_reader.ts`, PSUBSCRIBEd as a dashboard
 * is, parsing nothing), so that what Redis's fan-out costs the drain and
 * what the dashboard's own work on the host's CPUs costs it show apart
 * (`off` comes first; default `off,-E,dashboard`); `--reader-nice N` runs
 * the reader at that niceness (the dashboard's default is 10).
 *
 * `--warmup N` (0) has each drain's processes (worker, dashboard or
 * subscriber) drain N tasks first, unmeasured, and then the measured ones:
 * figures of processes that have been up a while (their code compiled and
 * optimized, the dashboard's task table full) instead of freshly started
 * ones, whose V8 compiles a third of a fresh dashboard's CPU goes to.
 *
 * It starts a private `redis-server` on `--port` (26997; db 12 broker, db
 * 13 results, no persistence), so the server's CPU is the drain's own, and
 * stops it at the end. `--json FILE` keeps every run's figures.
 *
 * `--base DIR` (another checkout, e.g. one made with `git archive`) runs
 * the three modes from it too, in the same rounds (six drains a round, the
 * order rotating): a before/after comparison under the same load, each
 * checkout's ratios against its own `off` and, per round, this checkout's
 * `-E` and `dashboard` CPU per task against the base's.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startBenchWorker, stopTree, threadCpuNs, threadSchedstats } from "./proc.ts";
import { openProbeDbs } from "./probe_dbs.ts";
import { DASHBOARD_PORT, startDashboard } from "./dashboard_watch.ts";
import { ROOT_DIR } from "./common.ts";
import { BENCH_QUEUE, noop } from "./tasks.ts";

const DRAIN_QUEUE = `${BENCH_QUEUE}.drain`;
const ALL_MODES = ["off", "-E", "subscriber", "dashboard"] as const;
type Mode = typeof ALL_MODES[number];
/** Which checkout a drain ran from: this one, or `--base DIR`. */
type Side = "this" | "base";
/** Task events a no-op task sends: received, started, succeeded. */
const EVENTS_PER_TASK = 3;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "8" },
    tasks: { type: "string", default: "20000" },
    port: { type: "string", default: "26997" },
    json: { type: "string" },
    base: { type: "string" },
    modes: { type: "string", default: "off,-E,dashboard" },
    warmup: { type: "string", default: "0" },
    "reader-nice": { type: "string" },
  },
});
const MODES = values.modes!.split(",") as Mode[];
if (MODES[0] !== "off" || MODES.some((m) => !ALL_MODES.includes(m))) {
  throw new TypeError(`--modes takes "off" first, then any of ${ALL_MODES.join(", ")}`);
}
const SIDES: { side: Side; root: string }[] = [
  { side: "this", root: ROOT_DIR },
  ...(values.base ? [{ side: "base" as const, root: values.base }] : []),
];
const rounds = Number(values.rounds);
const n = Number(values.tasks);
const warmup = Number(values.warmup);
if (!Number.isInteger(warmup) || warmup < 0) {
  throw new TypeError("--warmup takes a whole number >= 0");
}
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(n) || n < 1) {
  throw new TypeError("--rounds and --tasks take whole numbers >= 1");
}

/** One drain's figures: CPU in µs per task (`dashboard`: the subscriber's in that mode). */
interface Run {
  round: number;
  side: Side;
  mode: Mode;
  load: number;
  perSecond: number;
  worker: number;
  workerThreads: Record<string, number>;
  redis: number;
  dashboard: number | null;
  dashboardThreads: Record<string, number> | null;
  bench: number;
  dashboardRssMiB: number | null;
  dashboardEvents: number | null;
  dashboardTasksHeld: number | null;
  dashboardLagMs: number | null;
  /** The worker's main thread: µs per task it waited on a run queue, ready to run. */
  mainWait: number;
  /** The worker's main thread: time slices it ran, per 1,000 tasks. */
  mainSlices: number;
}

const cpuNs = (pid: number) =>
  [...threadSchedstats(pid).values()].reduce((sum, t) => sum + t.cpu, 0);
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventsApplied(): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${DASHBOARD_PORT}/api/overview`);
  return (await res.json()).events as number;
}

async function startRedis(port: number): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  for (let i = 0;; i++) {
    try {
      (await Deno.connect({ port })).close();
      return child;
    } catch (err) {
      if (i > 100) throw new Error(`redis-server did not listen on port ${port}: ${err}`);
      await sleep(50);
    }
  }
}

/** The `subscriber` mode's bare reader of the drain's events (bench/events_reader.ts). */
async function startReader(): Promise<Deno.ChildProcess> {
  const read = [
    Deno.execPath(),
    "run",
    "-A",
    "bench/events_reader.ts",
    values.port!,
    "/12.celeryev/*",
  ];
  const nice = values["reader-nice"];
  const [program, ...args] = nice ? ["nice", "-n", nice, ...read] : read;
  const child = new Deno.Command(program, {
    args,
    cwd: ROOT_DIR,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const first = await child.stdout.getReader().read();
  if (!new TextDecoder().decode(first.value).includes("subscribed")) {
    throw new Error("bench/events_reader.ts did not subscribe");
  }
  return child;
}

/** Send `count` no-ops to the queue the worker does not consume. */
async function enqueue(count: number): Promise<void> {
  for (let sent = 0; sent < count; sent += 1000) {
    await noop.delayMany(Array.from({ length: Math.min(1000, count - sent) }, () => []));
  }
}

async function drain(
  round: number,
  side: { side: Side; root: string },
  mode: Mode,
  dbs: Awaited<ReturnType<typeof openProbeDbs>>,
  redisPid: number,
): Promise<Run> {
  const { broker, results, brokerUrl, backendUrl } = dbs;
  await Promise.all([broker.flushdb(), results.flushdb()]);
  await enqueue(warmup || n);
  const worker = startBenchWorker({
    broker: brokerUrl,
    backend: backendUrl,
    queue: DRAIN_QUEUE,
    workerArgs: mode === "off" ? [] : ["-E"],
    root: side.root,
  });
  const watcher = mode === "dashboard"
    ? await startDashboard(
      side.root,
      { CELERY_BROKER_URL: brokerUrl, CELERY_RESULT_BACKEND: backendUrl },
      new Set(),
    )
    : null;
  const reader = mode === "subscriber" ? await startReader() : null;
  let seen: Awaited<ReturnType<NonNullable<typeof watcher>["stop"]>> | null = null;
  try {
    await worker.ready;
    if (warmup) {
      // The same processes drain `warmup` tasks first, then the n measured ones.
      const applied = watcher ? await eventsApplied() : 0;
      await broker.rename(BENCH_QUEUE, DRAIN_QUEUE);
      while (await results.dbsize() < warmup) await sleep(10);
      while (watcher && await eventsApplied() < applied + EVENTS_PER_TASK * warmup) {
        await sleep(10);
      }
      await results.flushdb();
      await enqueue(n);
    }
    await sleep(500);
    const load = Deno.loadavg()[0];
    const pid = worker.child.pid;
    const threads0 = threadCpuNs(pid);
    const main0 = threadSchedstats(pid).get(String(pid));
    const redis0 = cpuNs(redisPid);
    const bench0 = cpuNs(Deno.pid);
    const watchedPid = watcher?.pid ?? reader?.pid;
    const dash0 = watchedPid ? threadCpuNs(watchedPid) : new Map<string, number>();
    const applied0 = watcher ? await eventsApplied() : 0;
    const started = performance.now();
    await broker.rename(BENCH_QUEUE, DRAIN_QUEUE);
    while (await results.dbsize() < n) await sleep(10);
    const done = performance.now();
    const threads1 = threadCpuNs(pid);
    const main1 = threadSchedstats(pid).get(String(pid));
    const redis1 = cpuNs(redisPid);
    const bench1 = cpuNs(Deno.pid);
    let lag: number | null = null;
    let dash1 = new Map<string, number>();
    if (watcher) {
      while (await eventsApplied() < applied0 + EVENTS_PER_TASK * n) {
        if (performance.now() - done > 30_000) {
          throw new Error("the dashboard did not apply the drain's events in 30 s");
        }
        await sleep(10);
      }
      lag = performance.now() - done;
      dash1 = threadCpuNs(watcher.pid);
    } else if (reader) {
      await sleep(200); // the last events' fan-out read
      dash1 = threadCpuNs(reader.pid);
    }
    const perTask = (ns: number) => ns / 1000 / n;
    const byKind = (before: Map<string, number>, after: Map<string, number>) =>
      Object.fromEntries([...after].map(([k, ns]) => [k, perTask(ns - (before.get(k) ?? 0))]));
    if (watcher) seen = await watcher.stop();
    return {
      round,
      side: side.side,
      mode,
      load,
      perSecond: n / ((done - started) / 1000),
      worker: perTask(sum(threads1) - sum(threads0)),
      workerThreads: byKind(threads0, threads1),
      redis: perTask(redis1 - redis0),
      dashboard: watchedPid ? perTask(sum(dash1) - sum(dash0)) : null,
      dashboardThreads: watchedPid ? byKind(dash0, dash1) : null,
      bench: perTask(bench1 - bench0),
      dashboardRssMiB: seen ? seen.peakRssKiB / 1024 : null,
      dashboardEvents: seen ? seen.events : null,
      dashboardTasksHeld: seen ? seen.tasksHeld : null,
      dashboardLagMs: lag,
      mainWait: perTask((main1?.wait ?? 0) - (main0?.wait ?? 0)),
      mainSlices: ((main1?.slices ?? 0) - (main0?.slices ?? 0)) * 1000 / n,
    };
  } finally {
    await stopTree(worker.child);
    if (watcher && !seen) await watcher.stop();
    if (reader) await stopTree(reader);
  }
}

function runLine(r: Run): string {
  const threads = Object.entries(r.workerThreads).sort((a, b) => b[1] - a[1])
    .map(([k, us]) => `${k} ${us.toFixed(1)}`).join(", ");
  const dash = r.dashboard === null
    ? ""
    : r.mode === "subscriber"
    ? `; subscriber ${r.dashboard.toFixed(1)} µs`
    : `; dashboard ${r.dashboard.toFixed(1)} µs, caught up ${
      r.dashboardLagMs!.toFixed(0)
    } ms after, ${r.dashboardEvents} events, ${r.dashboardTasksHeld} tasks held, peak RSS ${
      r.dashboardRssMiB!.toFixed(1)
    } MiB`;
  const side = SIDES.length > 1 ? `${r.side} ` : "";
  return `round ${r.round + 1} ${side}${r.mode.padEnd(9)} ${Math.round(r.perSecond)}/s, load ${
    r.load.toFixed(2)
  }; CPU µs/task: worker ${r.worker.toFixed(1)} (${threads}), redis-server ${
    r.redis.toFixed(1)
  }, bench ${r.bench.toFixed(1)}; main waited ${r.mainWait.toFixed(1)} µs/task, ran ${
    r.mainSlices.toFixed(0)
  } slices/1,000 tasks${dash}`;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs: number[], digits: number) =>
  `median ${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${
    Math.max(...xs).toFixed(digits)
  })`;

function summary(all: Run[], side: Side): void {
  const runs = all.filter((r) => r.side === side);
  const of = (mode: Mode) => runs.filter((r) => r.mode === mode);
  const which = SIDES.length > 1 ? ` (${side === "this" ? "this checkout" : values.base})` : "";
  console.log(
    `\n${n} tasks${
      warmup ? ` (after ${warmup} unmeasured)` : ""
    }, ${rounds} rounds${which}; per mode, median (range):`,
  );
  for (const mode of MODES) {
    const rs = of(mode);
    const dash = mode === "dashboard"
      ? `, dashboard ${spread(rs.map((r) => r.dashboard!), 1)} µs/task, peak RSS ${
        spread(rs.map((r) => r.dashboardRssMiB!), 1)
      } MiB, caught up ${spread(rs.map((r) => r.dashboardLagMs!), 0)} ms after`
      : mode === "subscriber"
      ? `, subscriber ${spread(rs.map((r) => r.dashboard!), 1)} µs/task`
      : "";
    console.log(
      `  ${mode.padEnd(9)} ${spread(rs.map((r) => r.perSecond), 0)}/s; CPU µs/task: worker ${
        spread(rs.map((r) => r.worker), 1)
      }, main ${spread(rs.map((r) => r.workerThreads.main ?? 0), 1)}, redis-server ${
        spread(rs.map((r) => r.redis), 1)
      }; main waited ${spread(rs.map((r) => r.mainWait), 1)} µs/task, ${
        spread(rs.map((r) => r.mainSlices), 0)
      } slices/1,000 tasks${dash}; load ${spread(rs.map((r) => r.load), 2)}`,
    );
  }
  const base = of("off");
  for (const mode of MODES.slice(1)) {
    const rs = of(mode);
    const ratio = rs.map((r, i) => r.perSecond / base[i].perSecond);
    const more = (f: (r: Run) => number) => rs.map((r, i) => f(r) - f(base[i]));
    console.log(
      `  ${mode} / off, per round: throughput ${spread(ratio, 3)}; CPU µs/task added: worker ${
        spread(more((r) => r.worker), 1)
      }, main ${spread(more((r) => r.workerThreads.main ?? 0), 1)}, redis-server ${
        spread(more((r) => r.redis), 1)
      }, worker + redis-server + dashboard ${
        spread(more((r) => r.worker + r.redis + (r.dashboard ?? 0)), 1)
      }`,
    );
  }
}

/** Per round, this checkout's `-E` and `dashboard` against the base's: throughput and CPU. */
function sideBySide(runs: Run[]): void {
  console.log(`\nthis checkout / base (${values.base}), per round:`);
  const of = (side: Side, mode: Mode) => runs.filter((r) => r.side === side && r.mode === mode);
  for (const mode of MODES) {
    const now = of("this", mode), before = of("base", mode);
    const ratio = now.map((r, i) => r.perSecond / before[i].perSecond);
    const less = (f: (r: Run) => number) => now.map((r, i) => f(before[i]) - f(r));
    const dash = mode === "dashboard"
      ? `, dashboard ${spread(less((r) => r.dashboard!), 1)}, main ${
        spread(less((r) => r.dashboardThreads?.main ?? 0), 1)
      }`
      : "";
    console.log(
      `  ${mode.padEnd(9)} throughput ${spread(ratio, 3)}; CPU µs/task less: worker ${
        spread(less((r) => r.worker), 1)
      }, main ${spread(less((r) => r.workerThreads.main ?? 0), 1)}${dash}`,
    );
  }
}

const redis = await startRedis(Number(values.port));
const dbs = await openProbeDbs(`redis://127.0.0.1:${values.port}`);
const runs: Run[] = [];
try {
  const plan = SIDES.flatMap((side) => MODES.map((mode) => ({ side, mode })));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < plan.length; k++) {
      const { side, mode } = plan[(round + k) % plan.length];
      const run = await drain(round, side, mode, dbs, redis.pid);
      runs.push(run);
      console.log(runLine(run));
    }
  }
  for (const { side } of SIDES) summary(runs, side);
  if (SIDES.length > 1) sideBySide(runs);
  if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(runs, null, 2) + "\n");
} finally {
  await dbs.close();
  await stopTree(redis);
}
