// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/rss_timeline.ts`: when a Celeriac worker reaches its peak
 * RSS in the bench's drain (A). As the bench does, `--tasks` (20000) no-ops are
 * enqueued first (Redis db 12, results db 13, both flushed: run it under the
 * heavy lock), then the bench's worker is spawned (`-c 2`, the default command,
 * which starts over with its V8 flags and releases its start-up pages before
 * its Web Workers start and once ready) onto the full queue; its RSS (`VmRSS`
 * of the process tree) is read every `--every` (10) ms from spawn to
 * `--after` (500) ms past the last result. It prints the peak, when it came
 * (up to ready and the first take: the start-up; then the drain), the RSS at
 * ready and when done, the process's `VmHWM` (its highest RSS, start-up
 * included) and the drain rate; `--print MS` also prints the RSS every MS ms.
 * The bench samples every 100 ms: a start-up peak shorter than that shows
 * there in some runs only. `--env K=V` (repeatable) sets the worker's
 * environment (`CELERIAC_V8_FLAGS=...`, `MALLOC_ARENA_MAX=1`).
 *
 * Alternated comparisons: `--side 'DIR [K=V ...]'` (repeatable) runs the
 * worker of the checkout DIR (`.` for this one) with these variables added to
 * `--env`'s, and `--rounds N` (1) runs every side once per round, the order
 * rotated each round. With two sides or more it ends with each side's median
 * (range) of the peak, `VmHWM` and drain rate, and each side's per-round
 * ratios to the first side's run of the same round.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { processTree, startBenchWorker, stopTree } from "./proc.ts";
import { BENCH_QUEUE, noop } from "./tasks.ts";
import { openProbeDbs, type ProbeDbs } from "./probe_dbs.ts";
import { median } from "./common.ts";

/** One reading: ms since spawn, KiB. */
type Sample = [number, number];

/** A worker to measure: its checkout and its environment. */
interface Side {
  label: string;
  root: string;
  env: Record<string, string>;
}

/** One drain's figures (KiB, ms, tasks/s). */
interface Run {
  peak: number;
  hwm: number;
  rate: number;
}

function vmRssKiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1] ?? 0);
  } catch {
    return 0; // gone between listing and reading
  }
}

const mib = (kib: number) => (kib / 1024).toFixed(1);

const envOf = (pairs: string[]) =>
  Object.fromEntries(pairs.map((kv) => {
    const i = kv.indexOf("=");
    return [kv.slice(0, i), kv.slice(i + 1)];
  }));

async function drain(
  dbs: ProbeDbs,
  side: Side,
  n: number,
  every: number,
  after: number,
  print: number | undefined,
): Promise<Run> {
  await Promise.all([dbs.broker.flushdb(), dbs.results.flushdb()]);
  for (let sent = 0; sent < n; sent += 1000) {
    await noop.delayMany(Array.from({ length: Math.min(1000, n - sent) }, () => []));
  }
  const t0 = performance.now();
  const worker = startBenchWorker({
    broker: dbs.brokerUrl,
    backend: dbs.backendUrl,
    queue: BENCH_QUEUE,
    env: side.env,
    root: side.root,
  });
  const pid = worker.child.pid;
  let ready = -1;
  worker.ready.then(() => ready = performance.now() - t0, () => {});
  const samples: Sample[] = [];
  let first = -1;
  let done = -1;
  let hwm = 0;
  try {
    let pids = [pid];
    for (let i = 0;; i++) {
      if (i % 10 === 0) pids = processTree(pid);
      const t = performance.now() - t0;
      samples.push([t, pids.reduce((s, p) => s + vmRssKiB(p), 0)]);
      if (done >= 0 && t > done + after) break;
      if (first < 0 && await dbs.broker.llen(BENCH_QUEUE) < n) first = t;
      if (done < 0 && i % 5 === 0 && await dbs.results.dbsize() >= n) done = t;
      if (t > 120_000) throw new Error(`no ${n} results after 120 s:\n${worker.output()}`);
      await new Promise((r) => setTimeout(r, every));
    }
    hwm = Number(/VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1]);
  } finally {
    await stopTree(worker.child);
  }
  const peak = samples.reduce((a, b) => b[1] > a[1] ? b : a);
  const at = (t: number) => samples.find((s) => s[0] >= t)?.[1] ?? 0;
  // The first take and the ready line (after the release at ready) come within a few ms of each
  // other, in either order: a peak up to the later of them is the start-up's.
  const when = peak[0] <= Math.max(first, ready)
    ? "start-up"
    : peak[0] <= done
    ? "drain"
    : "after the drain";
  const rate = n / ((done - first) / 1000);
  console.log(
    `${side.label}: ${n} tasks: ready ${ready.toFixed(0)} ms, first take ${
      first.toFixed(0)
    } ms, done ${done.toFixed(0)} ms (${Math.round(rate)}/s); env ${JSON.stringify(side.env)}`,
  );
  console.log(
    `${side.label}: peak RSS ${mib(peak[1])} MiB at ${peak[0].toFixed(0)} ms (${when}); at ready ${
      mib(at(ready))
    }, when done ${mib(at(done))}; VmHWM ${mib(hwm)} MiB; ${samples.length} samples`,
  );
  if (print !== undefined) {
    let last = -Infinity;
    for (const [t, kib] of samples) {
      if (t - last < print) continue;
      console.log(`${t.toFixed(0).padStart(7)} ms ${mib(kib).padStart(7)} MiB`);
      last = t;
    }
  }
  return { peak: peak[1], hwm, rate };
}

const spread = (xs: number[], f: (x: number) => string) =>
  `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;

function summary(sides: Side[], runs: Run[][]): void {
  const figures: [string, (r: Run) => number, (x: number) => string][] = [
    ["peak RSS MiB", (r) => r.peak, (x) => mib(x)],
    ["VmHWM MiB", (r) => r.hwm, (x) => mib(x)],
    ["drain /s", (r) => r.rate, (x) => String(Math.round(x))],
  ];
  const ratio = (x: number) => x.toFixed(3);
  sides.forEach((side, s) => {
    const mine = runs.map((round) => round[s]);
    console.log(
      `${side.label}: ${
        figures.map(([name, f, fmt]) => `${name} ${spread(mine.map(f), fmt)}`).join("; ")
      }`,
    );
    if (s === 0) return;
    console.log(
      `  ÷ ${sides[0].label}, per round: ${
        figures.map(([name, f]) => {
          const rs = runs.map((round) => f(round[s]) / f(round[0]));
          return `${name} ${spread(rs, ratio)} lower in ${
            rs.filter((r) => r < 1).length
          }/${rs.length}`;
        }).join("; ")
      }`,
    );
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      tasks: { type: "string", default: "20000" },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
      env: { type: "string", multiple: true, default: [] },
      side: { type: "string", multiple: true, default: [] },
      rounds: { type: "string", default: "1" },
      every: { type: "string", default: "10" },
      after: { type: "string", default: "500" },
      print: { type: "string" },
    },
  });
  const here = new URL("..", import.meta.url).pathname;
  const env = envOf(values.env);
  const sides: Side[] = (values.side.length ? values.side : ["."]).map((spec, i) => {
    const [dir, ...pairs] = spec.trim().split(/\s+/);
    return {
      label: values.side.length > 1 ? `[${i}] ${spec}` : "worker",
      root: dir === "." ? here : dir,
      env: { ...env, ...envOf(pairs) },
    };
  });
  const dbs = await openProbeDbs(values.redis);
  try {
    const runs: Run[][] = [];
    for (let round = 0; round < Number(values.rounds); round++) {
      const results: Run[] = [];
      for (let k = 0; k < sides.length; k++) {
        const s = (k + round) % sides.length;
        results[s] = await drain(
          dbs,
          sides[s],
          Number(values.tasks),
          Number(values.every),
          Number(values.after),
          values.print === undefined ? undefined : Number(values.print),
        );
      }
      runs.push(results);
    }
    if (sides.length > 1 || runs.length > 1) summary(sides, runs);
  } finally {
    await dbs.close();
  }
}
