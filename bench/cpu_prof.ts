// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/cpu_prof.ts`: the drain's self time by function and by
 * file on every thread of the worker, main thread and Web Workers alike,
 * from Deno's own `--cpu-prof` (one `.cpuprofile` per isolate, written when
 * the worker exits; `bench/profile.ts` profiles through the inspector, which
 * lists the main thread only).
 *
 * N no-op tasks (`--tasks`, 20000) are enqueued with `delayMany` in a queue
 * the worker does not consume; the worker (`-c 2`, the bench's app, its
 * default V8 flags and malloc settings, given on its command line, plus
 * `--cpu-prof`) starts and, once ready, gets them all at
 * once (the bench's drain A), then is stopped with SIGTERM once the N
 * results are stored. Each profile is cut to the drain: from the first
 * sample of the main thread inside the intake's `receive`
 * (`src/worker/intake.ts`) to the last one inside the settling (`settlement.ts`, `store_results.ts`,
 * `redis_settle.ts`); every isolate shares V8's monotonic clock. For each
 * thread it prints its busy share of the drain, its busy time per task, and
 * the top functions and files by self time, in % of its busy samples.
 *
 * With `--roundtrips N` the window is N sequential round trips instead
 * (workload B: `noop.delay()` then `get()`, after 100 warm-up ones, the
 * worker consuming the bench's queue), and each figure is per round trip:
 * what a worker thread spends on a CPU per round trip, beside the wake-ups
 * that the profile does not show.
 *
 * Options: `--tasks N` (20000), `--top N` (15), `--interval US` (sampling
 * interval, 100), `--dir DIR` (where the profiles go; default a new
 * temporary directory), `--read DIR` (no run: summarize the profiles of an
 * earlier one, `--tasks` as it ran), `--json FILE` (the summary), `--redis URL` (db 12 =
 * broker, db 13 = results, both FLUSHDB'd), `-E` (the worker sends task events: run with and
 * without it for what they cost each thread).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_V8_FLAGS, ROOT_DIR } from "./common.ts";
import { MALLOC_DEFAULTS } from "../src/cli/v8_flags.ts";
import { startBenchWorker, stopTree } from "./proc.ts";
import { openProbeDbs } from "./probe_dbs.ts";
import { BENCH_QUEUE, noop } from "./tasks.ts";

const DRAIN_QUEUE = `${BENCH_QUEUE}.drain`;

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
}

/**
 * A thread's self time in its window, by function and by file (µs).
 *
 * @example
 * ```ts ignore
 * const s: ThreadSummary = summarizeWindow(profile, start, end);
 * console.log(s.busyUs / s.windowUs);
 * ```
 */
export interface ThreadSummary {
  windowUs: number;
  busyUs: number;
  functions: Map<string, number>;
  files: Map<string, number>;
}

/** Not busy (a Web Worker waiting for its next message is sampled in that op). */
const IDLE = new Set(["(idle)", "(program)", "(root)", "op_worker_maybe_wait_for_debugger"]);

function shortUrl(url: string): string {
  const pkg = url.match(/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\/[^/]+\/(.*)$/);
  if (pkg) return `${pkg[1]}/${pkg[2]}`;
  return url.replace(`file://${ROOT_DIR}`, "").replace(/^file:\/\/\/work\/[^/]+\//, "");
}

/** Sample times (µs, V8's monotonic clock) and each sample's node. */
function timeline(p: Profile): { times: Float64Array; parents: Map<number, number> } {
  const times = new Float64Array(p.samples.length);
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) times[i] = t += p.timeDeltas[i] ?? 0;
  const parents = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parents.set(c, n.id);
  return { times, parents };
}

/**
 * The drain's window on the main thread: first sample under the intake to
 * the last under the settling.
 *
 * @example
 * ```ts ignore
 * const [start, end] = drainWindow(JSON.parse(Deno.readTextFileSync(file)));
 * ```
 *
 * @param p the main thread's profile
 * @returns start and end (µs)
 */
export function drainWindow(p: Profile): [number, number] {
  const { times, parents } = timeline(p);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // By function too: a module's top level and its constructors run at start-up.
  const under = (id: number, re: RegExp, fn: RegExp) => {
    for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
      const cf = byId.get(at)!.callFrame;
      if (fn.test(cf.functionName) && re.test(cf.url)) return true;
    }
    return false;
  };
  let start = Infinity;
  let end = -Infinity;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i];
    if (start === Infinity && under(id, /\/src\/worker\/intake\.ts$/, /^receive$/)) {
      start = times[i];
    }
    if (
      under(id, /\/src\/(worker\/settlement|worker\/store_results|broker\/redis_settle)\.ts$/, /./)
    ) {
      end = times[i];
    }
  }
  return [start, end];
}

/**
 * Self time of a profile's samples inside `[start, end]`.
 *
 * @example
 * ```ts ignore
 * const { busyUs, functions } = summarizeWindow(workerProfile, start, end);
 * ```
 *
 * @param p a profile
 * @param start window start (µs)
 * @param end window end (µs)
 * @returns its summary
 */
export function summarizeWindow(p: Profile, start: number, end: number): ThreadSummary {
  const { times } = timeline(p);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  let busyUs = 0;
  for (let i = 1; i < p.samples.length; i++) {
    if (times[i] < start || times[i] > end) continue;
    const dt = times[i] - times[i - 1];
    const cf = byId.get(p.samples[i])!.callFrame;
    const name = cf.functionName || "(anonymous)";
    if (!cf.url && IDLE.has(name)) continue;
    busyUs += dt;
    const file = cf.url ? shortUrl(cf.url) : "(native)";
    const fn = `${name} ${cf.url ? `${file}:${cf.lineNumber + 1}` : ""}`;
    functions.set(fn, (functions.get(fn) ?? 0) + dt);
    files.set(file, (files.get(file) ?? 0) + dt);
  }
  return { windowUs: end - start, busyUs, functions, files };
}

function top(m: Map<string, number>, busyUs: number, n: number): [string, number][] {
  return [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => [k, 100 * us / busyUs]);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      tasks: { type: "string", default: "20000" },
      top: { type: "string", default: "15" },
      interval: { type: "string", default: "100" },
      dir: { type: "string" },
      read: { type: "string" },
      json: { type: "string" },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
      E: { type: "boolean", short: "E", default: false },
      roundtrips: { type: "string" },
    },
  });
  const trips = values.roundtrips === undefined ? 0 : Number(values.roundtrips);
  const n = trips || Number(values.tasks);
  let dir = values.read;
  let wallMs = 0;
  if (dir === undefined) {
    dir = values.dir ?? await Deno.makeTempDir({ prefix: "celeriac-cpuprof-" });
    wallMs = await drain(
      n,
      dir,
      values.interval!,
      values.redis!,
      values.E ? ["-E"] : [],
      trips > 0,
    );
  }
  await report(dir, n, wallMs, Number(values.top), values.json, trips > 0 ? "round trip" : "task");
}

/**
 * Run the drain (or, with `roundTrips`, n sequential round trips) with the
 * worker profiled into `dir`; returns its wall-clock time (ms).
 */
async function drain(
  n: number,
  dir: string,
  interval: string,
  redis: string,
  workerArgs: string[],
  roundTrips = false,
): Promise<number> {
  await Deno.mkdir(dir, { recursive: true });
  const dbs = await openProbeDbs(redis);
  for (let sent = 0; sent < n && !roundTrips; sent += 1000) {
    await noop.delayMany(Array.from({ length: Math.min(1000, n - sent) }, () => []));
  }
  const worker = startBenchWorker({
    broker: dbs.brokerUrl,
    backend: dbs.backendUrl,
    queue: roundTrips ? BENCH_QUEUE : DRAIN_QUEUE,
    // The worker's default flags given, so that it does not start over with them: a SIGPROF
    // pending across that exec kills the new image before its profiler handles the signal.
    denoArgs: [
      "--cpu-prof",
      `--cpu-prof-dir=${dir}`,
      `--cpu-prof-interval=${interval}`,
      `--v8-flags=${DEFAULT_V8_FLAGS}`,
    ],
    env: { ...MALLOC_DEFAULTS },
    workerArgs,
  });
  try {
    await worker.ready;
    await new Promise((r) => setTimeout(r, 300));
    if (roundTrips) {
      for (let i = 0; i < 100; i++) await (await noop.delay()).get({ timeout: 30_000 });
      const started = performance.now();
      for (let i = 0; i < n; i++) await (await noop.delay()).get({ timeout: 30_000 });
      return performance.now() - started;
    }
    const started = performance.now();
    await dbs.broker.rename(BENCH_QUEUE, DRAIN_QUEUE);
    while (await dbs.results.dbsize() < n) await new Promise((r) => setTimeout(r, 10));
    return performance.now() - started;
  } finally {
    await stopTree(worker.child);
    await dbs.close();
  }
}

/** Print (and save as JSON) the summary of the profiles in `dir`. */
async function report(
  dir: string,
  n: number,
  wallMs: number,
  k: number,
  json: string | undefined,
  unit = "task",
): Promise<void> {
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((f) =>
    f.endsWith(".cpuprofile")
  )
    .sort();
  const main = files.find((f) => !f.includes(".worker-"));
  if (!main) throw new Error(`no main-thread profile in ${dir}`);
  const read = (f: string): Profile => JSON.parse(Deno.readTextFileSync(`${dir}/${f}`));
  const [start, end] = drainWindow(read(main));
  console.log(
    `${n} ${unit}s in ${(wallMs / 1000).toFixed(2)} s (${Math.round(n / (wallMs / 1000))}/s, load ${
      Deno.loadavg()[0].toFixed(2)
    }); profiled window ${((end - start) / 1000).toFixed(0)} ms; profiles in ${dir}`,
  );
  const out: Record<string, unknown> = {};
  for (const f of [main, ...files.filter((f) => f !== main)]) {
    const thread = f === main ? "main" : f.match(/(worker-\d+)/)![1];
    const s = summarizeWindow(read(f), start, end);
    console.log(
      `\n${thread}: busy ${(100 * s.busyUs / s.windowUs).toFixed(1)} % of the window, ${
        (s.busyUs / n).toFixed(1)
      } µs per ${unit}`,
    );
    const fns = top(s.functions, s.busyUs, k);
    const fls = top(s.files, s.busyUs, k);
    for (const [name, pct] of fns) console.log(`  ${pct.toFixed(1).padStart(5)} %  ${name}`);
    console.log("  by file:");
    for (const [name, pct] of fls) console.log(`  ${pct.toFixed(1).padStart(5)} %  ${name}`);
    out[thread] = {
      busyUsPerTask: s.busyUs / n,
      busyShare: s.busyUs / s.windowUs,
      functions: Object.fromEntries(fns),
      files: Object.fromEntries(fls),
    };
  }
  if (json) await Deno.writeTextFile(json, JSON.stringify({ tasks: n, wallMs, ...out }, null, 2));
}

if (import.meta.main) await main();
