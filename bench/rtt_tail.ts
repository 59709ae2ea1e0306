// deno-lint-ignore-file no-console
/**
 * `[BENCH_REDIS=redis://HOST:PORT] deno run -A bench/rtt_tail.ts [--roundtrips 2000] [--warm 200] [--top 15] [--slow 3] [--no-perf] [--gc FILE] [--v8=FLAGS] [--log FILE] [--json FILE]`:
 * where each sequential round trip's time went, to find what makes the
 * tail (workload B's p99). Starts the bench's worker (`-c 2`, its default
 * flags; broker Redis db 10, results db 11, both flushed), runs `--warm`
 * unmeasured then `--roundtrips` measured `bench.stamp` round trips
 * (`delay()` + `get()`; the task returns the wall-clock time it started at
 * in its Web Worker) while `perf record` traces the scheduler of the whole
 * machine (`sched_switch`, `sched_waking`, CLOCK_MONOTONIC), and prints
 * for every round trip over `--slow` times the p50, and summed for them
 * against all others:
 *
 * - `to task` (`delay()` called → the task started) and `back` (→ `get()` resolved);
 * - each thread on the path (the client's main thread, redis-server, the
 *   worker's main thread, the Web Worker that ran it): its CPU time in the
 *   round trip and its run-queue wait (runnable, waiting for a core);
 * - the CPU time of everything else that ran meanwhile, by process and
 *   thread kind (the worker's V8 helpers, other processes by name), and the
 *   cores' idle time;
 * - the hops, from the scheduler's wake-ups: client → redis-server (the
 *   `LPUSH` written), redis-server → worker main (its claim read), worker
 *   main → Web Worker (the task handed over), Web Worker → worker main (its
 *   outcome), worker main → redis-server (the result store), redis-server →
 *   client (the `PUBLISH`), each as the time from `delay()` and the woken
 *   thread's wait for a core.
 *
 * `--gc FILE` runs the worker with `--trace-gc` (`DENO_V8_FLAGS`, beside its
 * default flags) and keeps its collections there; each isolate's lines count
 * from its own start, so they are lined up with the round trips by the
 * main thread's longest CPU bursts (printed). `--v8=FLAGS` adds V8 flags
 * the same way (`--v8=--trace-opt,--trace-deopt`), `--log FILE` keeps the
 * worker's output, `--json FILE` every round trip's times and the slow
 * ones' split. It also prints what ran beside each slow round trip (first
 * match: the worker's main thread busy over 1 ms at a stretch, a kernel
 * thread or another process over 1 ms, V8's helper threads over 1 ms, the
 * path's threads waiting over 1 ms for a core) and the worker's V8 helper
 * threads' CPU per round trip by 200 round trips (background compiling).
 * `--root DIR` runs another checkout's worker. Needs Linux `perf` (root).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { processTree, startBenchWorker, stopTree } from "./proc.ts";
import { app, BENCH_QUEUE, stamp } from "./tasks.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    roundtrips: { type: "string", default: "2000" },
    warm: { type: "string", default: "200" },
    top: { type: "string", default: "15" },
    slow: { type: "string", default: "3" },
    "no-perf": { type: "boolean", default: false },
    gc: { type: "string" },
    v8: { type: "string" },
    log: { type: "string" },
    json: { type: "string" },
    root: { type: "string" },
  },
});
const N = Number(values.roundtrips), WARM = Number(values.warm);
/** The Redis server: `BENCH_REDIS` (a private `redis-server`, say), default the shared one. */
const server = (Deno.env.get("BENCH_REDIS") ?? "redis://127.0.0.1:6379").replace(/\/\d*$/, "");
const brokerUrl = `${server}/10`;
const backendUrl = `${server}/11`;
const broker = new Redis(brokerUrl);
const results = new Redis(backendUrl);
await Promise.all([broker.flushdb(), results.flushdb()]);
const redisPid = Number(/process_id:(\d+)/.exec(await broker.info("server"))?.[1]);
app.configure({ broker: brokerUrl, backend: backendUrl });

/** CLOCK_MONOTONIC minus wall clock, ms (perf's clock against `timeOrigin + now()`). */
async function monoOffset(): Promise<number> {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import time;print(time.clock_gettime(time.CLOCK_MONOTONIC)*1e3-time.time()*1e3)"],
  }).output();
  return Number(new TextDecoder().decode(out.stdout));
}

const worker = startBenchWorker({
  broker: brokerUrl,
  backend: backendUrl,
  queue: BENCH_QUEUE,
  env: values.gc || values.v8
    ? { DENO_V8_FLAGS: [values.gc ? "--trace-gc" : "", values.v8 ?? ""].filter((x) => x).join(",") }
    : {},
  root: values.root,
});
await worker.ready;
const wpid = worker.child.pid;
const wall = () => performance.timeOrigin + performance.now();
for (let i = 0; i < WARM; i++) await (await stamp.delay()).get({ timeout: 30_000 });

let perf: Deno.ChildProcess | undefined;
const perfFile = await Deno.makeTempFile({ suffix: ".perf" });
if (!values["no-perf"]) {
  perf = new Deno.Command("perf", {
    args: [
      "record",
      "-q",
      "-k",
      "mono",
      "-e",
      "sched:sched_switch,sched:sched_waking",
      "-a",
      "-o",
      perfFile,
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await new Promise((r) => setTimeout(r, 500));
}
const offBefore = await monoOffset();
/** [start, task start, resolved], wall-clock ms. */
const trips: [number, number, number][] = [];
for (let i = 0; i < N; i++) {
  const s = wall();
  const ts = await (await stamp.delay()).get({ timeout: 30_000 }) as number;
  trips.push([s, ts, wall()]);
}
const offAfter = await monoOffset();
if (perf) {
  await new Promise((r) => setTimeout(r, 100));
  Deno.kill(perf.pid, "SIGINT");
  await perf.status;
}
const threads = new Map<number, string>(); // worker tids by comm, read before it stops
for (const pid of processTree(wpid)) {
  for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      threads.set(
        Number(e.name),
        Deno.readTextFileSync(`/proc/${pid}/task/${e.name}/comm`).trim(),
      );
    } catch { /* gone */ }
  }
}
await stopTree(worker.child);
await Promise.allSettled([broker.flushdb(), results.flushdb()]);
broker.disconnect();
results.disconnect();
await app.close();

const lat = trips.map(([s, , e]) => e - s);
const sorted = [...lat].sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.ceil(p / 100 * sorted.length) - 1];
const p50 = pct(50);
console.log(
  `${N} round trips: p50 ${p50.toFixed(3)} p90 ${pct(90).toFixed(3)} p99 ${pct(99).toFixed(3)} ` +
    `max ${pct(100).toFixed(3)} ms; p99/p50 ${(pct(99) / p50).toFixed(2)}; load ${
      Deno.loadavg()[0]
    }; clock offset drift ${(offAfter - offBefore).toFixed(3)} ms`,
);
const slowAt = Number(values.slow) * p50;
const isSlow = lat.map((l) => l > slowAt);
const f = (x: number) => x.toFixed(2);

// --- the scheduler's view ---------------------------------------------------------------------

interface Span {
  a: number;
  b: number;
}
/** Per thread: running spans, waiting spans, and its group. */
interface ThreadLine {
  run: Span[];
  wait: Span[];
  group: string;
  since?: number; // running since
  waitSince?: number; // runnable since
}
const lines = new Map<number, ThreadLine>();
/** Wake-ups: [time, waker tid, target tid]. */
const wakes: [number, number, number][] = [];
const clientTid = Deno.pid;
/** Web Workers' tids whose comm is unknown until seen. */
function groupOf(tid: number, comm: string): string {
  if (tid === 0) return "idle";
  if (tid === clientTid) return "client main";
  if (tid === redisPid) return "redis main";
  if (tid === wpid) return "worker main";
  const wc = threads.get(tid);
  if (wc !== undefined) {
    if (/^worker-\d+$/.test(wc)) return `worker ${wc}`;
    if (wc.startsWith("V8 ")) return "worker V8 helper";
    return `worker thread ${wc}`;
  }
  return `other: ${comm.replace(/[-:/ ]?\d+$/, "")}`;
}
function line(tid: number, comm: string): ThreadLine {
  let l = lines.get(tid);
  if (!l) lines.set(tid, l = { run: [], wait: [], group: groupOf(tid, comm) });
  return l;
}
if (perf) {
  const script = new Deno.Command("perf", {
    args: ["script", "-i", perfFile, "-F", "comm,tid,cpu,time,event,trace", "--ns"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let rest = "";
  const reSwitch =
    /^\s*(.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:\s+prev_comm=(.*) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+)/;
  const reWake =
    /^\s*(.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:sched_waking:\s+comm=(.*) pid=(\d+) prio/;
  const handle = (text: string) => {
    let m = reSwitch.exec(text);
    if (m) {
      const t = Number(m[4]) * 1000;
      const prev = line(Number(m[6]), m[5]);
      if (prev.since !== undefined) prev.run.push({ a: prev.since, b: t });
      prev.since = undefined;
      if (m[7].startsWith("R")) prev.waitSince = t; // preempted: still runnable
      const next = line(Number(m[9]), m[8]);
      if (next.waitSince !== undefined) next.wait.push({ a: next.waitSince, b: t });
      next.waitSince = undefined;
      next.since = t;
      return;
    }
    m = reWake.exec(text);
    if (m) {
      const t = Number(m[4]) * 1000;
      const target = line(Number(m[6]), m[5]);
      line(Number(m[2]), m[1]);
      if (target.since === undefined && target.waitSince === undefined) target.waitSince = t;
      wakes.push([t, Number(m[2]), Number(m[6])]);
    }
  };
  for await (const chunk of script.stdout.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    const parts = rest.split("\n");
    rest = parts.pop()!;
    for (const p of parts) handle(p);
  }
  await script.status;
}
await Deno.remove(perfFile).catch(() => {});

const off = (offBefore + offAfter) / 2;
/** Overlap of spans with [a, b], ms. */
function overlap(spans: Span[], a: number, b: number): number {
  let sum = 0;
  // spans are in time order: binary search the first that ends after a
  let lo = 0, hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (spans[mid].b <= a) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < spans.length && spans[i].a < b; i++) {
    sum += Math.max(0, Math.min(b, spans[i].b) - Math.max(a, spans[i].a));
  }
  return sum;
}
wakes.sort((x, y) => x[0] - y[0]);
function firstWakeOf(
  from: number,
  to: number,
  waker: (t: number) => boolean,
  target: (t: number) => boolean,
): [number, number] | undefined {
  let lo = 0, hi = wakes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (wakes[mid][0] < from) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < wakes.length && wakes[i][0] <= to; i++) {
    if (waker(wakes[i][1]) && target(wakes[i][2])) return [wakes[i][0], wakes[i][2]];
  }
  return undefined;
}
const isWW = (t: number) => /^worker-\d+$/.test(threads.get(t) ?? "");
const HOPS: [string, (t: number) => boolean, (t: number) => boolean][] = [
  ["client→redis", (t) => t === clientTid, (t) => t === redisPid],
  ["redis→wmain", (t) => t === redisPid, (t) => t === wpid],
  ["wmain→ww", (t) => t === wpid, isWW],
  ["ww→wmain", isWW, (t) => t === wpid],
  ["wmain→redis", (t) => t === wpid, (t) => t === redisPid],
  ["redis→client", (t) => t === redisPid, (t) => t === clientTid],
];

/** When `tid` next got a CPU at or after `t` (its first run span starting then), or undefined. */
function nextIn(tid: number, t: number): number | undefined {
  const runs = lines.get(tid)?.run ?? [];
  let lo = 0, hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid].a < t) lo = mid + 1;
    else hi = mid;
  }
  return runs[lo]?.a;
}
interface Row {
  i: number;
  ms: number;
  toTask: number;
  back: number;
  /** Per group: [cpu, wait] ms. */
  groups: Map<string, [number, number]>;
  /** Per hop: ms from start, or undefined. */
  hops: (number | undefined)[];
  /** Per hop: the woken thread's wait for a CPU, ms. */
  hopWaits: (number | undefined)[];
  /** The worker main thread's longest run within the round trip, ms. */
  mainBurst: number;
}
const rows: Row[] = trips.map(([s, ts, e], i) => {
  const a = s + off, b = e + off;
  const groups = new Map<string, [number, number]>();
  for (const l of lines.values()) {
    const cpu = overlap(l.run, a, b), wait = overlap(l.wait, a, b);
    if (cpu === 0 && wait === 0) continue;
    const g = groups.get(l.group) ?? [0, 0];
    g[0] += cpu;
    g[1] += wait;
    groups.set(l.group, g);
  }
  const hops: (number | undefined)[] = [];
  const hopWaits: (number | undefined)[] = [];
  let from = a;
  for (const [, w, t] of HOPS) {
    const found = firstWakeOf(from, b, w, t);
    hops.push(found === undefined ? undefined : found[0] - a);
    const inAt = found && nextIn(found[1], found[0]);
    hopWaits.push(found && inAt !== undefined ? inAt - found[0] : undefined);
    if (found !== undefined) from = found[0];
  }
  let mainBurst = 0;
  for (const sp of lines.get(wpid)?.run ?? []) {
    if (sp.b > a && sp.a < b) {
      mainBurst = Math.max(mainBurst, Math.min(b, sp.b) - Math.max(a, sp.a));
    }
  }
  return { i, ms: e - s, toTask: ts - s, back: e - ts, groups, hops, hopWaits, mainBurst };
});

function summary(rs: Row[]): Map<string, [number, number]> {
  const sum = new Map<string, [number, number]>();
  for (const r of rs) {
    for (const [g, [c, w]] of r.groups) {
      const x = sum.get(g) ?? [0, 0];
      x[0] += c / rs.length;
      x[1] += w / rs.length;
      sum.set(g, x);
    }
  }
  return sum;
}
const slow = rows.filter((r) => isSlow[r.i]), fast = rows.filter((r) => !isSlow[r.i]);
const mean = (xs: number[]) => xs.reduce((p, q) => p + q, 0) / Math.max(1, xs.length);
console.log(
  `slow (> ${values.slow}× p50 = ${f(slowAt)} ms): ${slow.length} of ${N}; ` +
    `to task ${f(mean(slow.map((r) => r.toTask)))} vs ${f(mean(fast.map((r) => r.toTask)))} ms, ` +
    `back ${f(mean(slow.map((r) => r.back)))} vs ${
      f(mean(fast.map((r) => r.back)))
    } ms (slow vs rest, means)`,
);
if (perf) {
  const ss = summary(slow), fs = summary(fast);
  const names = [...new Set([...ss.keys(), ...fs.keys()])].sort((x, y) =>
    (ss.get(y)?.[0] ?? 0) + (ss.get(y)?.[1] ?? 0) - (ss.get(x)?.[0] ?? 0) - (ss.get(x)?.[1] ?? 0)
  );
  console.log("  per round trip, ms: cpu / run-queue wait, slow vs rest");
  for (const g of names.slice(0, 25)) {
    const s = ss.get(g) ?? [0, 0], r = fs.get(g) ?? [0, 0];
    console.log(
      `    ${g.padEnd(34)} ${f(s[0]).padStart(6)} / ${f(s[1]).padStart(5)}   vs ${
        f(r[0]).padStart(6)
      } / ${f(r[1]).padStart(5)}`,
    );
  }
  console.log(
    "  hops (ms from delay(), median of slow vs rest): " + HOPS.map(([name], k) => {
      const med = (rs: Row[]) => {
        const xs = rs.map((r) => r.hops[k]).filter((x) => x !== undefined).sort((p, q) => p! - q!);
        return xs.length ? `${f(xs[xs.length >> 1]!)}(${xs.length})` : "-";
      };
      return `${name} ${med(slow)} vs ${med(fast)}`;
    }).join(", "),
  );
  const hopWaitMed = (rs: Row[], k: number) => {
    const xs = rs.map((r) => r.hopWaits[k]).filter((x) => x !== undefined).sort((p, q) => p! - q!);
    return xs.length ? f(xs[xs.length >> 1]!) : "-";
  };
  console.log(
    "  woken thread's wait for a CPU per hop (median, slow vs rest): " +
      HOPS.map(([name], k) => `${name} ${hopWaitMed(slow, k)} vs ${hopWaitMed(fast, k)}`)
        .join(", "),
  );
  const bursts = (rs: Row[], over: number) => rs.filter((r) => r.mainBurst > over).length;
  console.log(
    `  worker main thread ran > 1 ms at a stretch in ${bursts(slow, 1)} slow round trips ` +
      `(> 2 ms: ${bursts(slow, 2)}), ${bursts(fast, 1)} others; ` +
      `its runs > 2 ms in the window at (ms since the first round trip, length): ` +
      (lines.get(wpid)?.run ?? []).filter((sp) =>
        sp.b - sp.a > 2 && sp.a > trips[0][0] + off && sp.a < trips[N - 1][2] + off
      ).map((sp) => `${(sp.a - off - trips[0][0]).toFixed(0)}:${f(sp.b - sp.a)}`).join(" "),
  );
  // What ran beside each slow round trip, first match wins: the worker's main thread busy at a
  // stretch (a collection, a long turn), a kernel thread or another process holding a core, V8's
  // helper threads (compiling), else a path thread's wait for a core or nothing seen.
  const causes = new Map<string, number>();
  for (const r of slow) {
    const cpu = (pred: (g: string) => boolean) =>
      [...r.groups].filter(([g]) => pred(g)).reduce((p, [, [c]]) => p + c, 0);
    const waits = ["client main", "redis main", "worker main"].reduce(
      (p, g) => p + (r.groups.get(g)?.[1] ?? 0),
      0,
    ) + cpu(() => false);
    const cause = r.mainBurst > 1
      ? "worker main thread busy > 1 ms at a stretch"
      : cpu((g) => /^other: (kdamond|kworker|ksoftirqd|rcu|kcompactd|migration)/.test(g)) > 1
      ? "kernel thread > 1 ms"
      : cpu((g) => g.startsWith("other: ") && !/V8|kdamond|kworker|perf/.test(g)) > 1
      ? "other processes > 1 ms"
      : cpu((g) => g.includes("V8")) > 1
      ? "V8 helper threads > 1 ms"
      : waits > 1
      ? "path threads waited for a core > 1 ms"
      : "none of these";
    causes.set(cause, (causes.get(cause) ?? 0) + 1);
  }
  console.log(
    "  beside each slow round trip: " +
      [...causes].sort((x, y) => y[1] - x[1]).map(([c, n]) => `${c} ${n}`).join("; "),
  );
  const helpers = [...lines.values()].filter((l) => l.group === "worker V8 helper");
  const chunk = 200;
  const perChunk: string[] = [];
  for (let k = 0; k + chunk <= N; k += chunk) {
    const a = trips[k][0] + off, b = trips[k + chunk - 1][2] + off;
    const ms = helpers.reduce((p, l) => p + overlap(l.run, a, b), 0);
    perChunk.push((ms / chunk * 1000).toFixed(0));
  }
  console.log(
    `  worker V8 helpers' CPU per round trip, µs, by ${chunk} round trips: ${perChunk.join(" ")}`,
  );
  const top = [...slow].sort((x, y) => y.ms - x.ms).slice(0, Number(values.top));
  console.log(`  the ${top.length} slowest (ms since the first measured round trip):`);
  for (const r of top) {
    const g = [...r.groups].filter(([k]) => k !== "idle").sort((x, y) =>
      y[1][0] + y[1][1] - x[1][0] - x[1][1]
    )
      .slice(0, 6).map(([k, [c, w]]) => `${k} ${f(c)}/${f(w)}`).join(", ");
    console.log(
      `    #${r.i} @${(trips[r.i][0] - trips[0][0]).toFixed(0)} ${f(r.ms)} ms (to task ${
        f(r.toTask)
      }, back ${f(r.back)}) idle ${f(r.groups.get("idle")?.[0] ?? 0)} main burst ${
        f(r.mainBurst)
      }; hops ${
        r.hops.map((h, k) =>
          h === undefined ? "-" : `${f(h)}+${r.hopWaits[k] === undefined ? "?" : f(r.hopWaits[k]!)}`
        ).join(" ")
      }; ${g}`,
    );
  }
}
// Slow round trips' spacing: periodic work shows as a regular interval.
const slowStarts = slow.map((r) => trips[r.i][0] - trips[0][0]);
const gaps = slowStarts.slice(1).map((x, k) => x - slowStarts[k]).sort((a, b) => a - b);
if (gaps.length) {
  console.log(
    `  gaps between slow round trips (ms): min ${gaps[0].toFixed(0)} median ${
      gaps[gaps.length >> 1].toFixed(0)
    } max ${gaps[gaps.length - 1].toFixed(0)}; measured window ${
      (trips[N - 1][2] - trips[0][0]).toFixed(0)
    } ms`,
  );
}
if (values.gc) {
  const gc = worker.output().split("\n").filter((l) => /ms: (Scavenge|Mark|Minor)/.test(l));
  await Deno.writeTextFile(values.gc, gc.join("\n"));
  console.log(`  ${gc.length} GC lines in ${values.gc}`);
}
if (values.log) await Deno.writeTextFile(values.log, worker.output());
if (values.json) {
  await Deno.writeTextFile(
    values.json,
    JSON.stringify({
      trips,
      slowAt,
      rows: rows.filter((r) => isSlow[r.i]).map((r) => ({
        ...r,
        groups: Object.fromEntries(r.groups),
      })),
    }),
  );
}
