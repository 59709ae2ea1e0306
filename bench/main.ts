// deno-lint-ignore-file no-console
/**
 * `deno task bench`: Celeriac against Python Celery 5.2.6 on Redis, in one
 * run — drain throughput, sequential round-trip latency and worker memory.
 * See bench/README.md for what is measured and the caveats.
 *
 * Options: `--tasks N` (20000), `--roundtrips N` (2000),
 * `--only celeriac|celery`, `--prefetch N` (Celeriac worker; default: the
 * worker's own), `--v8-flags F` (Celeriac worker; default the README's
 * production setting `--max-semi-space-size=1`, `none` for V8's defaults),
 * `--redis URL` (server; the bench uses its dbs 14 and 15).
 *
 * @module
 */

import { Redis } from "ioredis";
import { parseArgs } from "node:util";
import { type MemoryPeak, MemorySampler, stopTree } from "./proc.ts";
import { app, BENCH_QUEUE, noop } from "./tasks.ts";

const BENCH_DIR = new URL(".", import.meta.url).pathname;
const ROOT_DIR = new URL("..", import.meta.url).pathname;
/** Python with Celery 5.2.6 installed (BENCH_PYTHON overrides). */
const PYTHON = Deno.env.get("BENCH_PYTHON") ?? "/usr/bin/python3";
const BROKER_DB = 14;
const BACKEND_DB = 15;
const CONCURRENCY = 2;
/** V8 flags the README recommends for production workers (smaller young generation). */
const DEFAULT_V8_FLAGS = "--max-semi-space-size=1";
const WARMUP = 100;
/** Poll interval of LLEN while waiting for the worker's first take. */
const TAKE_POLL_MS = 5;
/** Poll interval of DBSIZE (results db) while the worker drains. */
const DONE_POLL_MS = 20;
/** Memory sampling interval during the drain. */
const MEMORY_SAMPLE_MS = 100;
const ENQUEUE_BATCH = 1000;
const SIDES = ["celeriac", "celery"] as const;

/** Which implementation a measurement is of. */
type Side = typeof SIDES[number];

interface Options {
  tasks: number;
  roundtrips: number;
  only: Side | null;
  prefetch: number | undefined;
  v8Flags: string | null;
  redis: string;
}

interface LatencyStats {
  n: number;
  warmup: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

interface SideResult {
  worker: string;
  enqueueSeconds: number;
  startupMs: number;
  drainMs: number;
  drainTasksPerSecond: number;
  drainTasksPerSecondFromSpawn: number;
  successes: number;
  roundtrip: LatencyStats;
  memory: MemoryPeak;
  stoppedWith: string;
  workerOutput: string;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`${flag} needs a whole number >= 1`);
  return n;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      tasks: { type: "string" },
      roundtrips: { type: "string" },
      only: { type: "string" },
      prefetch: { type: "string" },
      "v8-flags": { type: "string" },
      redis: { type: "string" },
    },
  });
  const only = values.only ?? null;
  if (only !== null && only !== "celeriac" && only !== "celery") {
    throw new TypeError(`--only must be "celeriac" or "celery", got "${only}"`);
  }
  return {
    tasks: positiveInt(values.tasks, "--tasks") ?? 20_000,
    roundtrips: positiveInt(values.roundtrips, "--roundtrips") ?? 2_000,
    only,
    prefetch: positiveInt(values.prefetch, "--prefetch"),
    v8Flags: values["v8-flags"] === "none" ? null : values["v8-flags"] ?? DEFAULT_V8_FLAGS,
    redis: values.redis ?? "redis://127.0.0.1:6379",
  };
}

/** The server URL with its database replaced by `db`. */
function dbUrl(server: string, db: number): string {
  const url = new URL(server);
  url.pathname = `/${db}`;
  return url.href;
}

/** Children still running, stopped on exit or on Ctrl-C. */
const live = new Set<Deno.ChildProcess>();

function spawn(cmd: string, args: string[], cwd: string, env: Record<string, string>) {
  const child = new Deno.Command(cmd, { args, cwd, env, stdout: "piped", stderr: "piped" })
    .spawn();
  live.add(child);
  child.status.finally(() => live.delete(child));
  return child;
}

/** A worker process with its combined output (read until it exits). */
interface RunningWorker {
  child: Deno.ChildProcess;
  command: string;
  output: Promise<string>;
  exited: boolean;
}

function startWorker(side: Side, opts: Options, env: Record<string, string>): RunningWorker {
  const [cmd, args, cwd] = side === "celeriac"
    ? [Deno.execPath(), [
      "run",
      ...(opts.v8Flags ? [`--v8-flags=${opts.v8Flags}`] : []),
      "-A",
      "worker.ts",
      "--app",
      "bench/tasks.ts",
      "-c",
      String(CONCURRENCY),
      "-Q",
      BENCH_QUEUE,
      "--loglevel",
      "WARNING",
      ...(opts.prefetch ? ["--prefetch", String(opts.prefetch)] : []),
    ], ROOT_DIR]
    : [PYTHON, [
      "-m",
      "celery",
      "-A",
      "celery_tasks",
      "worker",
      "-P",
      "prefork",
      "-c",
      String(CONCURRENCY),
      "-Q",
      BENCH_QUEUE,
      "-n",
      "bench-celery@%h",
      "--loglevel",
      "WARNING",
    ], BENCH_DIR];
  const child = spawn(cmd, args, cwd, side === "celery" ? { ...env, PYTHONPATH: BENCH_DIR } : env);
  const decode = (s: ReadableStream<Uint8Array>) => new Response(s).text();
  const worker: RunningWorker = {
    child,
    command: `${side === "celeriac" ? "deno" : "python3"} ${args.join(" ")}`,
    output: Promise.all([decode(child.stdout), decode(child.stderr)]).then((p) => p.join("")),
    exited: false,
  };
  child.status.then(() => worker.exited = true);
  return worker;
}

/** Run bench/celery_client.py and parse the JSON it prints. */
async function pythonClient(args: string[], env: Record<string, string>): Promise<unknown> {
  const child = spawn(PYTHON, [`${BENCH_DIR}celery_client.py`, ...args], BENCH_DIR, {
    ...env,
    PYTHONPATH: BENCH_DIR,
  });
  const out = await child.output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(`celery_client.py ${args.join(" ")} failed:\n${text.decode(out.stderr)}`);
  }
  return JSON.parse(text.decode(out.stdout));
}

/** Poll `check` until true; returns `performance.now()` at that moment. */
async function pollUntil(
  check: () => Promise<boolean>,
  intervalMs: number,
  timeoutMs: number,
  what: string,
  worker: RunningWorker,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (worker.exited) throw new Error(`the worker exited while waiting for ${what}`);
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return performance.now();
}

async function enqueue(side: Side, n: number, env: Record<string, string>): Promise<number> {
  if (side === "celery") {
    return ((await pythonClient(["enqueue", String(n)], env)) as { seconds: number }).seconds;
  }
  const start = performance.now();
  for (let sent = 0; sent < n; sent += ENQUEUE_BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(ENQUEUE_BATCH, n - sent) }, () => noop.delay()),
    );
  }
  return (performance.now() - start) / 1000;
}

/** Count stored metas with status SUCCESS and result 1. */
async function countSuccesses(results: Redis): Promise<number> {
  let cursor = "0";
  let ok = 0;
  do {
    const [next, keys] = await results.scan(cursor, "MATCH", "celery-task-meta-*", "COUNT", 2000);
    cursor = next;
    if (keys.length === 0) continue;
    for (const raw of await results.mget(...keys)) {
      const meta = raw ? JSON.parse(raw) : null;
      if (meta?.status === "SUCCESS" && meta.result === 1) ok++;
    }
  } while (cursor !== "0");
  return ok;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}

function latencyStats(latencies: number[]): LatencyStats {
  const s = [...latencies].sort((a, b) => a - b);
  return {
    n: s.length,
    warmup: WARMUP,
    p50: percentile(s, 0.5),
    p90: percentile(s, 0.9),
    p99: percentile(s, 0.99),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    min: s[0],
    max: s[s.length - 1],
  };
}

async function roundTrips(side: Side, n: number, env: Record<string, string>): Promise<number[]> {
  if (side === "celery") {
    const out = await pythonClient(["roundtrip", String(n), String(WARMUP)], env);
    return (out as { latencies_ms: number[] }).latencies_ms;
  }
  const latencies: number[] = [];
  for (let i = 0; i < WARMUP + n; i++) {
    const start = performance.now();
    const value = await (await noop.delay()).get({ timeout: 30_000 });
    const elapsed = performance.now() - start;
    if (value !== 1) throw new Error(`bench.noop returned ${JSON.stringify(value)}`);
    if (i >= WARMUP) latencies.push(elapsed);
  }
  return latencies;
}

async function runSide(
  side: Side,
  opts: Options,
  env: Record<string, string>,
  broker: Redis,
  results: Redis,
): Promise<SideResult> {
  const n = opts.tasks;
  await broker.flushdb();
  await results.flushdb();
  console.log(`[${side}] enqueueing ${n} tasks…`);
  const enqueueSeconds = await enqueue(side, n, env);
  const depth = await broker.llen(BENCH_QUEUE);
  if (depth !== n) throw new Error(`expected ${n} messages in "${BENCH_QUEUE}", found ${depth}`);

  const worker = startWorker(side, opts, env);
  const spawnedAt = performance.now();
  console.log(`[${side}] draining: ${worker.command}`);
  try {
    const sampler = new MemorySampler(worker.child.pid, MEMORY_SAMPLE_MS);
    let memory: MemoryPeak;
    let firstTake: number;
    let done: number;
    try {
      firstTake = await pollUntil(
        async () => await broker.llen(BENCH_QUEUE) < n,
        TAKE_POLL_MS,
        120_000,
        "the first take",
        worker,
      );
      done = await pollUntil(
        async () => await results.dbsize() >= n,
        DONE_POLL_MS,
        600_000,
        `${n} results`,
        worker,
      );
    } finally {
      memory = sampler.stop();
    }
    const left = await broker.llen(BENCH_QUEUE);
    const successes = await countSuccesses(results);
    if (left !== 0 || successes !== n) {
      throw new Error(
        `after the drain: ${left} message(s) left, ${successes}/${n} SUCCESS results`,
      );
    }
    await results.flushdb();

    console.log(`[${side}] ${opts.roundtrips} round trips (after ${WARMUP} warm-up)…`);
    const roundtrip = latencyStats(await roundTrips(side, opts.roundtrips, env));
    const drainMs = done - firstTake;
    return {
      worker: worker.command,
      enqueueSeconds,
      startupMs: firstTake - spawnedAt,
      drainMs,
      drainTasksPerSecond: n / (drainMs / 1000),
      drainTasksPerSecondFromSpawn: n / ((done - spawnedAt) / 1000),
      successes,
      roundtrip,
      memory,
      stoppedWith: await stopTree(worker.child),
      workerOutput: (await worker.output).trim(),
    };
  } finally {
    if (!worker.exited) await stopTree(worker.child);
  }
}

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const fixed = (x: number, d = 2) => x.toFixed(d);
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined ? "n/a" : `${(a / b).toFixed(2)}x`;
}

function printTable(opts: Options, r: Partial<Record<Side, SideResult>>): void {
  type Row = [string, (s: SideResult) => number, (x: number) => string];
  const rows: Row[] = [
    [`enqueue ${opts.tasks} tasks (client)`, (s) => s.enqueueSeconds, (x) => `${fixed(x)} s`],
    ["worker startup (spawn → first take)", (s) => s.startupMs, (x) => `${int(x)} ms`],
    [`drain (first take → ${opts.tasks} results)`, (s) => s.drainMs / 1000, (x) => `${fixed(x)} s`],
    ["drain throughput", (s) => s.drainTasksPerSecond, (x) => `${int(x)} tasks/s`],
    [
      "  incl. startup (from spawn)",
      (s) => s.drainTasksPerSecondFromSpawn,
      (x) => `${int(x)} tasks/s`,
    ],
    ["round trip p50", (s) => s.roundtrip.p50, (x) => `${fixed(x, 3)} ms`],
    ["round trip p90", (s) => s.roundtrip.p90, (x) => `${fixed(x, 3)} ms`],
    ["round trip p99", (s) => s.roundtrip.p99, (x) => `${fixed(x, 3)} ms`],
    ["round trip mean", (s) => s.roundtrip.mean, (x) => `${fixed(x, 3)} ms`],
    ["round trip min", (s) => s.roundtrip.min, (x) => `${fixed(x, 3)} ms`],
    ["round trip max", (s) => s.roundtrip.max, (x) => `${fixed(x, 3)} ms`],
    ["worker peak RSS (sampled sum)", (s) => s.memory.peakRssKiB, mib],
    ["worker VmHWM (sum per process)", (s) => s.memory.hwmSumKiB, mib],
    ["worker peak PSS (sampled sum)", (s) => s.memory.peakPssKiB, mib],
    ["worker processes", (s) => s.memory.pids.length, (x) => String(x)],
  ];
  const table = [
    ["", "celeriac", "celery 5.2.6", "celeriac/celery"],
    ...rows.map(([label, get, show]) => {
      const a = r.celeriac ? get(r.celeriac) : undefined;
      const b = r.celery ? get(r.celery) : undefined;
      return [label, a === undefined ? "-" : show(a), b === undefined ? "-" : show(b), ratio(a, b)];
    }),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("   ");
  console.log();
  console.log(line(table[0]));
  console.log(widths.map((w) => "-".repeat(w)).join("   "));
  for (const row of table.slice(1)) console.log(line(row));
}

function summaries(opts: Options, r: Partial<Record<Side, SideResult>>): string[] {
  const { celeriac: a, celery: b } = r;
  const both = <T>(get: (s: SideResult) => T, show: (x: T) => string) =>
    `celeriac ${a ? show(get(a)) : "-"} | celery ${b ? show(get(b)) : "-"}`;
  const faster = (x: number, y: number) =>
    x <= y ? `${(y / x).toFixed(1)}x faster` : `${(x / y).toFixed(1)}x slower`;
  const lines = [
    `drain ${opts.tasks} tasks: ${both((s) => s.drainTasksPerSecond, (x) => `${int(x)} tasks/s`)}` +
    ` | ratio ${a && b ? `${(a.drainTasksPerSecond / b.drainTasksPerSecond).toFixed(1)}x` : "n/a"}`,
  ];
  for (const p of ["p50", "p99"] as const) {
    lines.push(
      `round trip ${p}: ${both((s) => s.roundtrip[p], (x) => `${fixed(x, 2)} ms`)}` +
        ` | ratio ${a && b ? faster(a.roundtrip[p], b.roundtrip[p]) : "n/a"}`,
    );
  }
  lines.push(
    `worker peak RSS during drain: ${
      both((s) => s.memory, (m) => `${mib(m.peakRssKiB)} (${m.pids.length} process(es))`)
    } | ratio ${a && b ? `${(a.memory.peakRssKiB / b.memory.peakRssKiB).toFixed(2)}x` : "n/a"}`,
    `worker peak PSS during drain: ${both((s) => s.memory.peakPssKiB, mib)}` +
      ` | ratio ${a && b ? `${(a.memory.peakPssKiB / b.memory.peakPssKiB).toFixed(2)}x` : "n/a"}`,
  );
  return lines;
}

async function capture(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd: ROOT_DIR, stdout: "piped", stderr: "null" })
    .output();
  return new TextDecoder().decode(out.stdout).trim();
}

/** The commit measured, noting uncommitted changes to the library's files. */
async function revision(): Promise<string> {
  const head = await capture("git", ["rev-parse", "--short", "HEAD"]);
  const dirty = await capture("git", [
    "status",
    "--porcelain",
    "--",
    "mod.ts",
    "worker.ts",
    "transports.ts",
    "src",
    "deno.json",
  ]);
  const n = dirty ? dirty.split("\n").length : 0;
  return n ? `${head} + uncommitted changes to ${n} file(s)` : head;
}

async function main(): Promise<void> {
  const opts = parseOptions(Deno.args);
  const brokerUrl = dbUrl(opts.redis, BROKER_DB);
  const backendUrl = dbUrl(opts.redis, BACKEND_DB);
  const env = { CELERY_BROKER_URL: brokerUrl, CELERY_RESULT_BACKEND: backendUrl };
  app.configure({ broker: brokerUrl, backend: backendUrl });
  const broker = new Redis(brokerUrl);
  const results = new Redis(backendUrl);
  const started = performance.now();
  const measured = await revision();
  const loadAtStart = Deno.loadavg();

  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    console.error("\ninterrupted: stopping workers and flushing the bench databases");
    Promise.allSettled([...live].map((c) => stopTree(c, 5_000)))
      .then(() => Promise.allSettled([broker.flushdb(), results.flushdb()]))
      .finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const out: Partial<Record<Side, SideResult>> = {};
  try {
    const others = (await broker.client("LIST") as string).split("\n")
      .filter((l) => / db=(14|15) /.test(l)).length - 2;
    console.log(
      `Redis ${opts.redis}: db ${BROKER_DB} = broker, db ${BACKEND_DB} = results; both are FLUSHDB'd ` +
        `before each side and after the bench${
          others > 0 ? ` (WARNING: ${others} other client(s) use them)` : ""
        }.`,
    );
    console.log(
      `Celeriac at ${measured}; ${opts.tasks} tasks, ${opts.roundtrips} round trips, concurrency ${CONCURRENCY}, ` +
        `celeriac prefetch ${
          opts.prefetch ?? "worker default"
        }, ${navigator.hardwareConcurrency} CPU(s), load average ${
          loadAtStart.map((x) => x.toFixed(2)).join(" ")
        }.`,
    );
    for (const side of SIDES) {
      if (opts.only && opts.only !== side) continue;
      out[side] = await runSide(side, opts, env, broker, results);
    }
  } finally {
    await Promise.allSettled([...live].map((c) => stopTree(c)));
    await broker.flushdb();
    await results.flushdb();
    broker.disconnect();
    results.disconnect();
    await app.close();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }

  printTable(opts, out);
  console.log();
  const lines = summaries(opts, out);
  for (const l of lines) console.log(l);
  for (const side of SIDES) {
    const r = out[side];
    if (!r) continue;
    const text = r.workerOutput;
    console.log(
      `\n${side} worker: stopped with ${r.stoppedWith}; output ${
        text ? `(${text.split("\n").length} line(s)):\n${text}` : "empty"
      }`,
    );
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`\nbench took ${seconds.toFixed(1)} s; results written to bench/results.json`);
  const record = {
    date: new Date().toISOString(),
    seconds,
    options: { ...opts, prefetch: opts.prefetch ?? null },
    environment: {
      celeriac: measured,
      cpus: navigator.hardwareConcurrency,
      loadAverageAtStart: loadAtStart,
      deno: Deno.version.deno,
      python: await capture(PYTHON, ["--version"]),
      celery: await capture(PYTHON, ["-c", "import celery; print(celery.__version__)"]),
      redis: { server: opts.redis, brokerDb: BROKER_DB, backendDb: BACKEND_DB },
      concurrency: CONCURRENCY,
      pollMs: { firstTake: TAKE_POLL_MS, done: DONE_POLL_MS, memory: MEMORY_SAMPLE_MS },
    },
    results: out,
    summary: lines,
  };
  await Deno.writeTextFile(`${BENCH_DIR}results.json`, JSON.stringify(record, null, 2) + "\n");
}

if (import.meta.main) await main();
