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
 * @module
 */

import { parseArgs } from "node:util";
import { processTree, startBenchWorker, stopTree } from "./proc.ts";
import { BENCH_QUEUE, noop } from "./tasks.ts";
import { openProbeDbs } from "./probe_dbs.ts";

/** One reading: ms since spawn, KiB. */
type Sample = [number, number];

function vmRssKiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1] ?? 0);
  } catch {
    return 0; // gone between listing and reading
  }
}

const mib = (kib: number) => (kib / 1024).toFixed(1);

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      tasks: { type: "string", default: "20000" },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
      env: { type: "string", multiple: true, default: [] },
      every: { type: "string", default: "10" },
      after: { type: "string", default: "500" },
      print: { type: "string" },
    },
  });
  const n = Number(values.tasks);
  const every = Number(values.every);
  const env = Object.fromEntries(values.env.map((kv) => {
    const i = kv.indexOf("=");
    return [kv.slice(0, i), kv.slice(i + 1)];
  }));
  const dbs = await openProbeDbs(values.redis);
  try {
    for (let sent = 0; sent < n; sent += 1000) {
      await noop.delayMany(Array.from({ length: Math.min(1000, n - sent) }, () => []));
    }
    const t0 = performance.now();
    const worker = startBenchWorker({
      broker: dbs.brokerUrl,
      backend: dbs.backendUrl,
      queue: BENCH_QUEUE,
      env,
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
        if (done >= 0 && t > done + Number(values.after)) break;
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
    console.log(
      `${n} tasks: ready ${ready.toFixed(0)} ms, first take ${first.toFixed(0)} ms, done ${
        done.toFixed(0)
      } ms (${Math.round(n / ((done - first) / 1000))}/s); env ${JSON.stringify(env)}`,
    );
    console.log(
      `peak RSS ${mib(peak[1])} MiB at ${peak[0].toFixed(0)} ms (${when}); at ready ${
        mib(at(ready))
      }, when done ${mib(at(done))}; VmHWM ${mib(hwm)} MiB; ${samples.length} samples`,
    );
    if (values.print) {
      let last = -Infinity;
      for (const [t, kib] of samples) {
        if (t - last < Number(values.print)) continue;
        console.log(`${t.toFixed(0).padStart(7)} ms ${mib(kib).padStart(7)} MiB`);
        last = t;
      }
    }
  } finally {
    await dbs.close();
  }
}
