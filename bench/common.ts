// deno-lint-ignore-file no-console
/**
 * What the benchmark's workloads share: options, result shapes, spawning
 * workers and the Python client, polling, latency statistics.
 *
 * @module
 */

import { type DashboardFigures, startDashboard } from "./dashboard_watch.ts";
import { type MemoryPeak, MemorySampler, stopTree } from "./proc.ts";
import { BENCH_QUEUE } from "./tasks.ts";

/** bench/, with a trailing slash. */
export const BENCH_DIR = new URL(".", import.meta.url).pathname;
/** The repository's root, with a trailing slash. */
export const ROOT_DIR = new URL("..", import.meta.url).pathname;
/** Python with Celery 5.2.6 installed (BENCH_PYTHON overrides). */
export const PYTHON = Deno.env.get("BENCH_PYTHON") ?? "/usr/bin/python3";
/** Worker concurrency on both sides. */
export const CONCURRENCY = 2;
/** V8 flags the worker runs with by default (the README's production command): the worker's own constant. */
export { DEFAULT_V8_FLAGS } from "../src/cli/v8_flags.ts";
/** Round trips before the measured ones. */
export const WARMUP = 100;
/** Poll interval of the queue depth while waiting for the worker's first take. */
export const TAKE_POLL_MS = 5;
/** Poll interval of the result count while the worker drains. */
export const DONE_POLL_MS = 20;
/** Memory sampling interval during the drain. */
export const MEMORY_SAMPLE_MS = 100;
/** Tasks the Celeriac client publishes at once. */
export const ENQUEUE_BATCH = 1000;
/** The Celery-protocol implementations compared. */
export const SIDES = ["celeriac", "celery"] as const;
/** The peers run beside them (bench/peers/, Node): BullMQ and the raw-client ceiling. */
export const PEERS = ["bullmq", "raw"] as const;
/** Peers per broker: BullMQ runs on Redis only. */
export const PEERS_ON: Record<BrokerKind, readonly Peer[]> = { redis: PEERS, amqp: ["raw"] };
/** Milliseconds of CPU each task of workload D spins for. */
export const CPU_TASK_MS = 5;
/** The brokers benchmarked. */
export const BROKERS = ["redis", "amqp"] as const;

/** Which peer (not a Celery implementation) a measurement is of. */
export type Peer = typeof PEERS[number];
/** Which implementation a measurement is of. */
export type Side = typeof SIDES[number] | Peer;
/** Which broker a workload runs on. */
export type BrokerKind = typeof BROKERS[number];

/**
 * Command-line options.
 *
 * @example
 * ```ts ignore
 * const opts: Options = { tasks: 20000, roundtrips: 2000, only: null, broker: "all", prefetch: undefined, v8Flags: "", taskEvents: false, redis: "redis://127.0.0.1:6379", amqp: "amqp://guest:guest@127.0.0.1:5672" };
 * ```
 */
export interface Options {
  tasks: number;
  roundtrips: number;
  /** Tasks of the CPU-bound workload D (0 skips it). */
  cpuTasks: number;
  /** Tasks each client enqueues for workload C (0 skips it). */
  enqueueTasks: number;
  only: Side | null;
  broker: BrokerKind | "all";
  prefetch: number | undefined;
  /** Celeriac worker's `--v8-flags`: "" for none (the worker applies its own), null for V8's defaults. */
  v8Flags: string | null;
  /** Workers run with `-E` (task events on), both Celeriac and Celery. */
  taskEvents: boolean;
  redis: string;
  amqp: string;
  /** Watch each drain with a dashboard, task events on (`--dashboard`). */
  dashboard?: boolean;
  /** Tasks of workload E, a burst onto an idle worker (`--burst`; 0 or absent skips it). */
  burst?: number;
}

/**
 * Percentiles and more of round-trip latencies, in ms.
 *
 * @example
 * ```ts ignore
 * const { p50, p99 }: LatencyStats = latencyStats([0.8, 0.9, 1.2]);
 * ```
 */
export interface LatencyStats {
  n: number;
  warmup: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/**
 * What one side measured on one broker.
 *
 * @example
 * ```ts ignore
 * const r: SideResult = await runSide("celeriac", opts, env, steps);
 * console.log(r.drainTasksPerSecond, r.roundtrip.p50);
 * ```
 */
export interface SideResult {
  worker: string;
  /** Whose client enqueued the drained tasks. */
  enqueuedBy: Side;
  enqueueSeconds: number;
  startupMs: number;
  drainMs: number;
  drainTasksPerSecond: number;
  drainTasksPerSecondFromSpawn: number;
  successes: number;
  /**
   * Round trips (workload B): on Redis, Celeriac's and the raw client's interleaved in rounds on
   * fresh idle workers after every drain ({@link SideResult.roundtripRounds}); else measured
   * after the drain of the side's own client's tasks, with that worker.
   */
  roundtrip: LatencyStats | null;
  /**
   * How B was interleaved (Redis, Celeriac and raw): rounds, measured round trips per block,
   * unmeasured ones before each, and Celeriac's p50 / raw's with the range of the per-round
   * ratios of block p50s.
   */
  roundtripRounds?: {
    rounds: number;
    block: number;
    warm: number;
    vsRaw?: { p50: number; min: number; max: number };
  };
  memory: MemoryPeak;
  stoppedWith: string;
  workerOutput: string;
  /** With `--dashboard`: what the dashboard saw and its memory. */
  dashboard?: DashboardFigures;
}

/**
 * Children still running, stopped on exit or on Ctrl-C.
 *
 * @example
 * ```ts ignore
 * for (const child of live) await stopTree(child);
 * ```
 */
export const live: Set<Deno.ChildProcess> = new Set();

function spawn(cmd: string, args: string[], cwd: string, env: Record<string, string>) {
  const child = new Deno.Command(cmd, { args, cwd, env, stdout: "piped", stderr: "piped" })
    .spawn();
  live.add(child);
  child.status.finally(() => live.delete(child));
  return child;
}

/**
 * A worker process with its combined output (read until it exits).
 *
 * @example
 * ```ts ignore
 * const w: RunningWorker = startWorker("celery", opts, env);
 * if (!w.exited) await stopTree(w.child);
 * console.log(await w.output);
 * ```
 */
export interface RunningWorker {
  child: Deno.ChildProcess;
  command: string;
  output: Promise<string>;
  exited: boolean;
}

/**
 * Spawn a worker: Celeriac (`worker.ts --app bench/tasks.ts`) or Celery
 * prefork, concurrency {@link CONCURRENCY}, queue `bench`; broker and
 * backend from `env` (CELERY_BROKER_URL, CELERY_RESULT_BACKEND).
 *
 * @example
 * ```ts ignore
 * const worker = startWorker("celeriac", opts, { CELERY_BROKER_URL: "redis://127.0.0.1:6379/14" });
 * ```
 *
 * @param side which implementation
 * @param opts the bench's options
 * @param env environment of the worker
 * @returns the running worker
 */
export function startWorker(
  side: Side,
  opts: Options,
  env: Record<string, string>,
): RunningWorker {
  const peer = side === "bullmq" || side === "raw";
  const [cmd, args, cwd] = peer
    ? ["node", [peerScript(side, env), "worker"], PEERS_DIR]
    : side === "celeriac"
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
      ...(opts.prefetch ? ["--prefetch", String(opts.prefetch)] : []),
      ...(opts.taskEvents || opts.dashboard ? ["-E"] : []),
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
      ...(opts.taskEvents || opts.dashboard ? ["-E"] : []),
    ], BENCH_DIR];
  const sideEnv = side === "celery"
    ? { ...env, PYTHONPATH: BENCH_DIR }
    : side === "celeriac" && opts.v8Flags === null
    ? { ...env, CELERIAC_V8_FLAGS: "" }
    : env;
  const child = spawn(cmd, args, cwd, sideEnv);
  const program = { celeriac: "deno", celery: "python3", bullmq: "node", raw: "node" }[side];
  const decode = (s: ReadableStream<Uint8Array>) => new Response(s).text();
  const worker: RunningWorker = {
    child,
    command: `${program} ${args.join(" ")}`,
    output: Promise.all([decode(child.stdout), decode(child.stderr)]).then((p) => p.join("")),
    exited: false,
  };
  child.status.then(() => worker.exited = true);
  return worker;
}

/**
 * Run bench/celery_client.py and parse the JSON it prints.
 *
 * @example
 * ```ts ignore
 * const { seconds } = await pythonClient(["enqueue", "1000"], env) as { seconds: number };
 * ```
 *
 * @param args its arguments
 * @param env broker and backend
 * @returns what it printed
 */
export async function pythonClient(args: string[], env: Record<string, string>): Promise<unknown> {
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

/** bench/peers/, where the Node peers and their own node_modules live. */
export const PEERS_DIR = `${BENCH_DIR}peers/`;

/** The peer's script for the broker `env` names (CELERY_BROKER_URL). */
function peerScript(peer: Peer, env: Record<string, string>): string {
  const amqp = env.CELERY_BROKER_URL.startsWith("amqp");
  return peer === "bullmq" ? "bullmq.mjs" : amqp ? "raw_amqp.mjs" : "raw_redis.mjs";
}

/**
 * Run a peer's client (`node bench/peers/<peer>.mjs ARGS`) and parse the
 * JSON it prints; BENCH_BROKER_URL / BENCH_BACKEND_DB come from `env`.
 *
 * @example
 * ```ts ignore
 * const { seconds } = await peerClient("bullmq", ["enqueue", "1000"], env) as { seconds: number };
 * ```
 *
 * @param peer which peer
 * @param args its arguments
 * @param env broker and backend
 * @returns what it printed
 */
export async function peerClient(
  peer: Peer,
  args: string[],
  env: Record<string, string>,
): Promise<unknown> {
  const child = spawn("node", [peerScript(peer, env), ...args], PEERS_DIR, env);
  const out = await child.output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `bench/peers ${peer} ${args.join(" ")} failed (did you run \`npm ci\` in bench/peers?):\n${
        text.decode(out.stderr)
      }`,
    );
  }
  return JSON.parse(text.decode(out.stdout));
}

/**
 * Poll `check` until true.
 *
 * @example
 * ```ts ignore
 * const at = await pollUntil(async () => await depth() === 0, 5, 60_000, "an empty queue", worker);
 * ```
 *
 * @param check the condition
 * @param intervalMs time between checks
 * @param timeoutMs give up after this long
 * @param what what is waited for, for errors
 * @param worker fails when it exits meanwhile
 * @returns `performance.now()` when `check` was first true
 */
export async function pollUntil(
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

function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}

/**
 * Nearest-rank percentiles, mean, min and max.
 *
 * @example
 * ```ts ignore
 * latencyStats([1, 2, 3, 4]).p50; // 2
 * ```
 *
 * @param latencies the measured round trips, in ms
 * @returns the statistics
 */
export function latencyStats(latencies: number[]): LatencyStats {
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

/**
 * Sequential round trips of `bench.noop`, after {@link WARMUP} unmeasured
 * ones: Celeriac in this process (`call` sends and waits for the value),
 * Python in a celery_client.py process.
 *
 * @example
 * ```ts ignore
 * const ms = await roundTrips("celeriac", 2000, env, async () => await (await noop.delay()).get());
 * ```
 *
 * @param side which client
 * @param n measured round trips
 * @param env broker and backend of the Python client
 * @param call one Celeriac round trip, resolving with the task's value
 * @returns the latencies, in ms
 */
export async function roundTrips(
  side: Side,
  n: number,
  env: Record<string, string>,
  call: () => Promise<unknown>,
): Promise<number[]> {
  if (side !== "celeriac") {
    const args = ["roundtrip", String(n), String(WARMUP)];
    const out = side === "celery"
      ? await pythonClient(args, env)
      : await peerClient(side, args, env);
    return (out as { latencies_ms: number[] }).latencies_ms;
  }
  const latencies: number[] = [];
  for (let i = 0; i < WARMUP + n; i++) {
    const start = performance.now();
    const value = await call();
    const elapsed = performance.now() - start;
    if (value !== 1) throw new Error(`bench.noop returned ${JSON.stringify(value)}`);
    if (i >= WARMUP) latencies.push(elapsed);
  }
  return latencies;
}

/**
 * Clean-ups of the workload running now (flush its databases, delete its vhost), run on Ctrl-C.
 *
 * @example
 * ```ts ignore
 * cleanups.add(() => redis.flushdb());
 * ```
 */
export const cleanups: Set<() => Promise<unknown>> = new Set();

/**
 * Run a workload's side: enqueue, spawn the worker, measure, stop it.
 *
 * @example
 * ```ts ignore
 * const result = await runSide("celery", opts, env, { enqueue, depth, results, verify, call });
 * ```
 *
 * @param side which implementation
 * @param opts the bench's options
 * @param env the worker's environment
 * @param steps what differs between brokers
 * @returns the side's figures
 */
export async function runSide(
  side: Side,
  opts: Options,
  env: Record<string, string>,
  steps: {
    /** Tasks to drain; default `opts.tasks`. */
    n?: number;
    /** Whose client enqueues (default `side`); only the side's own client's drain measures round trips. */
    enqueuedBy?: Side;
    /** Enqueue `n` tasks; resolves with the seconds it took. */
    enqueue(n: number): Promise<number>;
    /** Messages waiting in the bench queue. */
    depth(): Promise<number>;
    /** Results that have arrived (SUCCESS or not). */
    results(): Promise<number>;
    /** Check every result (resolves with the number of SUCCESS ones with value 1) and clear them. */
    verify(): Promise<number>;
    /** One Celeriac round trip. */
    call(): Promise<unknown>;
    /** Whether B follows the drain here (default true; false: measured elsewhere, interleaved). */
    roundtrips?: boolean;
  },
): Promise<SideResult> {
  const n = steps.n ?? opts.tasks;
  const enqueuedBy = steps.enqueuedBy ?? side;
  console.log(`[${side}] enqueueing ${n} tasks with the ${enqueuedBy} client…`);
  const enqueueSeconds = await steps.enqueue(n);
  // RabbitMQ may still be routing the last messages of a client that published without
  // confirms (Python's) when it exits: its queue depth catches up within moments.
  let depth = await steps.depth();
  for (const t0 = Date.now(); depth < n && Date.now() - t0 < 5_000; depth = await steps.depth()) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (depth !== n) throw new Error(`expected ${n} messages in "${BENCH_QUEUE}", found ${depth}`);

  const watcher = opts.dashboard ? await startDashboard(ROOT_DIR, env, live) : null;
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
        async () => await steps.depth() < n,
        TAKE_POLL_MS,
        120_000,
        "the first take",
        worker,
      );
      done = await pollUntil(
        async () => await steps.results() >= n,
        DONE_POLL_MS,
        600_000,
        `${n} results`,
        worker,
      );
    } finally {
      memory = sampler.stop();
    }
    const left = await steps.depth();
    const successes = await steps.verify();
    if (left !== 0 || successes !== n) {
      throw new Error(
        `after the drain: ${left} message(s) left, ${successes}/${n} SUCCESS results`,
      );
    }
    let roundtrip: LatencyStats | null = null;
    if (
      enqueuedBy === side && steps.n === undefined && opts.roundtrips > 0 &&
      steps.roundtrips !== false
    ) {
      console.log(`[${side}] ${opts.roundtrips} round trips (after ${WARMUP} warm-up)…`);
      roundtrip = latencyStats(await roundTrips(side, opts.roundtrips, env, steps.call));
    }
    const drainMs = done - firstTake;
    const dashboard = await watcher?.stop();
    if (dashboard) {
      console.log(
        `[${side}] dashboard: ${dashboard.events} events, ${dashboard.tasksHeld} tasks held, ` +
          `peak RSS ${(dashboard.peakRssKiB / 1024).toFixed(0)} MiB`,
      );
    }
    return {
      worker: worker.command,
      enqueuedBy,
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
      ...(dashboard ? { dashboard } : {}),
    };
  } finally {
    if (!worker.exited) await stopTree(worker.child);
  }
}

/**
 * The median of `xs` (the mean of the two middle values for an even count).
 *
 * @example
 * ```ts
 * median([3, 1, 2, 10]); // 2.5
 * ```
 */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
