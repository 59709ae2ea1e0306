// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/profile.ts`: where a Celeriac worker's main thread
 * spends its time per task, comparable across changes. Starts the worker
 * (`-c 2`, the bench's app, default flags) with the V8 inspector on, waits
 * until it is ready, starts the CPU profiler through the inspector
 * protocol, enqueues N no-op tasks with `delayMany`, waits for their N
 * results, stops the profiler, and prints:
 *
 * - the worker's RSS idle (ready, before any task) and at the end, and VmHWM;
 * - busy time of the main thread per task (µs), split by stage: the
 *   Celeriac files grouped by what they do (decode, pool/transfer to the
 *   Web Workers, result encode, settle: acks and result writes, logging),
 *   ioredis, Node compatibility, the garbage collector, the rest;
 * - the top functions by self time;
 * - CPU time per task of every thread of the worker process, from
 *   `/proc` (main thread, Web Workers, V8's GC and compiler threads, Deno's
 *   I/O threads): the Web Workers' cost, which the profile cannot show, and
 *   a figure less sensitive to load than wall-clock samples.
 *
 * The Web Workers' own isolates are not in the profile (Deno's inspector
 * lists only the main thread); their CPU time is in the per-thread line.
 *
 * Options: `--drain` (enqueue every task first, in a queue the worker
 * does not consume, and give them all to it at once when the profile
 * starts — the bench's drain — rather than while it runs), `--tasks N` (2000), `--redis URL` (db 12 = broker, db 13 =
 * results, both FLUSHDB'd), `--save FILE` (write the .cpuprofile, for
 * Chrome DevTools), `--json FILE` (write the summary), `--top N` (15),
 * `--perf FILE` (also record the worker with Linux `perf record -g` into
 * FILE, on-CPU samples of every thread; add `--perf-basic-prof` to
 * `--v8-flags` for JavaScript names in `perf report`),
 * `--roundtrips` (the tasks are N sequential `delay()` + `get()` round trips, workload B,
 * after 100 unmeasured ones, instead of `delayMany` batches: every figure per round trip),
 * `--heap` (V8's sampling heap profiler on the main thread during the run,
 * objects collected since included: KB allocated per task, in all and by
 * function, top N), `--promoted` (the same, of the objects no young-generation collection
 * freed: what the main thread promoted to its old generation, held at the end, or a full
 * collection freed while still young), `--gc` (the worker with `--trace-gc-nvp`: scavenges per 1000 tasks, their
 * pause, KB promoted per task, mark-compacts, of its main isolate),
 * `--no-sample` (no V8 profile: only the per-thread CPU line, without the
 * profiler's own cost), `--syscalls` (also count, per task, the system
 * calls, wake-ups, context switches and page faults of each thread kind of
 * the worker and of the Redis server with `perf stat`, and the Redis
 * commands run from `INFO commandstats`; see syscalls.ts), `--server-pid PID` (the Redis server whose CPU
 * per task is also printed; default the local `redis-server` when exactly
 * one runs, none when `0`; the line also gives this bench process's own), `--dashboard` (as `-E`,
 * and a dashboard, `worker.ts dashboard` as the bench's `--dashboard` starts it, watches the worker:
 * its CPU per task is printed with the other processes'), `--v8-flags F` (the worker's; default the bench's), `--prefetch N` (the worker's; default its own), `--time-limit S` / `--soft-time-limit S` (the
 * worker's: every task limited; default none), `--loglevel L` (the
 * worker's; default none, i.e. its default levels).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_V8_FLAGS, ROOT_DIR } from "./common.ts";
import { processTree, startBenchWorker, stopTree, threadCpuNs, threadSchedstats } from "./proc.ts";
import { BENCH_QUEUE, noop } from "./tasks.ts";
import { openProbeDbs } from "./probe_dbs.ts";
import { startDashboard } from "./dashboard_watch.ts";
import { commandCalls, commandsPerTask, countKernelEvents, kernelLines } from "./syscalls.ts";

/** The queue a `--drain` worker consumes: the tasks are renamed into it at once. */
const DRAIN_QUEUE = `${BENCH_QUEUE}.drain`;

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
/** A V8 CPU profile, as `Profiler.stop` returns it. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** What a profile's self time is spent on, by source. */
const STAGES: [RegExp, string][] = [
  [/\/src\/protocol\/(envelope|message|task_request|codecs|compression|msgpack)\.ts/, "decode"],
  [/\/src\/protocol\/(result_meta|json|repr|exceptions)\.ts/, "result encode"],
  [
    /\/src\/worker\/(pool|pool_protocol|pool_setup|sandboxes|children)\.ts/,
    "pool: Web Worker transfer",
  ],
  [/\/src\/worker\/(settlement|result_entries|outcomes|follow_ups)\.ts/, "settle"],
  [/\/src\/(broker|backend)\//, "broker/backend adapters"],
  [/\/src\/worker\/(intake|runner|lifecycle|lifecycle_log|executor)\.ts/, "intake/lifecycle"],
  [/\/src\/worker\//, "worker (other)"],
  [/\/src\/protocol\//, "protocol (other)"],
  [/\/src\//, "celeriac (other)"],
  [/@logtape/, "logging (LogTape)"],
  [/ioredis|redis-parser|denque|cluster-key-slot|standard-as-callback/, "ioredis"],
  [/^node:|ext:deno_node|ext:node/, "Node compat"],
  [/^ext:/, "Deno runtime"],
];

function stageOf(cf: CallFrame, table: readonly [RegExp, string][]): string {
  if (!cf.url) {
    const name = cf.functionName || "native";
    return name.startsWith("(") ? name : `(${name})`;
  }
  for (const [re, stage] of table) if (re.test(cf.url)) return stage;
  const pkg = cf.url.match(/npm\/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)/);
  return pkg ? `npm:${pkg[1]}` : "other";
}

function shortUrl(url: string): string {
  const pkg = url.match(/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\/[^/]+\/(.*)$/);
  if (pkg) return `${pkg[1]}/${pkg[2]}`;
  return url.replace(`file://${ROOT_DIR}`, "");
}

/**
 * Self time per stage and per function, in µs, from a V8 CPU profile.
 *
 * @example
 * ```ts ignore
 * const { stages, functions, busyUs } = summarize(profile);
 * ```
 *
 * @param profile the profile
 * @param table source URL pattern → stage, first match wins (default: a worker's stages)
 * @returns self times by stage and by function (busy = all but idle)
 */
export function summarize(profile: CpuProfile, table: readonly [RegExp, string][] = STAGES): {
  stages: Map<string, number>;
  functions: Map<string, number>;
  busyUs: number;
  totalUs: number;
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const stages = new Map<string, number>();
  const functions = new Map<string, number>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    totalUs += dt;
    const cf = byId.get(profile.samples[i])!.callFrame;
    const stage = stageOf(cf, table);
    stages.set(stage, (stages.get(stage) ?? 0) + dt);
    const fn = `${cf.functionName || "(anonymous)"} ${
      cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : ""
    }`;
    functions.set(fn, (functions.get(fn) ?? 0) + dt);
  }
  const idle = (stages.get("(idle)") ?? 0) + (stages.get("(program)") ?? 0);
  return { stages, functions, busyUs: totalUs - idle, totalUs };
}

/**
 * A minimal Chrome DevTools Protocol client over a V8 inspector's WebSocket.
 *
 * @example
 * ```ts ignore
 * const inspector = await Inspector.open(9229);
 * await inspector.send("Profiler.enable");
 * ```
 */
export class Inspector {
  #ws: WebSocket;
  #next = 1;
  #pending = new Map<number, (result: unknown) => void>();
  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.id) this.#pending.get(msg.id)?.(msg.result ?? msg.error);
      this.#pending.delete(msg.id);
    };
  }
  static async open(port: number): Promise<Inspector> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
        const ws = new WebSocket(list[0].webSocketDebuggerUrl);
        await new Promise((ok, fail) => {
          ws.onopen = ok;
          ws.onerror = fail;
        });
        return new Inspector(ws);
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    this.#ws.send(JSON.stringify({ id, method, params }));
    return new Promise((ok) => this.#pending.set(id, ok as (r: unknown) => void));
  }
  close(): void {
    this.#ws.close();
  }
}

function rssKiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  return processTree(pid).reduce((sum, p) => {
    const m = Deno.readTextFileSync(`/proc/${p}/status`).match(new RegExp(`${field}:\\s+(\\d+)`));
    return sum + (m ? Number(m[1]) : 0);
  }, 0);
}

/** The one `redis-server` process of this machine, or null (none, or several). */
function localRedisPid(): number | null {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/comm`).trim() === "redis-server") {
        pids.push(Number(e.name));
      }
    } catch {
      // the process ended while listing
    }
  }
  return pids.length === 1 ? pids[0] : null;
}

/**
 * CPU time so far (ns, all threads) of this bench process, of the Redis
 * server and of the dashboard, when known (the dashboard's also by thread kind).
 */
function otherCpuNs(serverPid: number | null, dashboardPid: number | null): Map<string, number> {
  const total = (pid: number) =>
    [...threadSchedstats(pid).values()].reduce((sum, t) => sum + t.cpu, 0);
  const out = new Map([["bench process", total(Deno.pid)]]);
  if (serverPid !== null) out.set("redis-server", total(serverPid));
  if (dashboardPid !== null) {
    out.set("dashboard", total(dashboardPid));
    for (const [kind, ns] of threadCpuNs(dashboardPid)) out.set(`dashboard ${kind}`, ns);
  }
  return out;
}

/** A node of a sampled heap profile (`HeapProfiler.stopSampling`). */
export interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/**
 * Bytes allocated in all, and by function (self), of a sampled heap profile.
 * A built-in or runtime function (`subarray`, `decode`) is named with the
 * nearest file: caller that made it allocate (`subarray :0 <- read x.ts:12`).
 *
 * @example
 * ```ts ignore
 * const { total, top } = heapSummary(profile.head, 15);
 * ```
 *
 * @param head the profile's root
 * @param top how many functions to list
 * @returns the total and the `top` functions by bytes
 */
export function heapSummary(
  head: HeapNode,
  top: number,
): { total: number; top: [string, number][] } {
  const byFn = new Map<string, number>();
  let total = 0;
  const name = (f: CallFrame) =>
    `${f.functionName || "(anonymous)"} ${f.url.split("/").slice(-2).join("/")}:${
      f.lineNumber + 1
    }`;
  const walk = (node: HeapNode, caller: string) => {
    const f = node.callFrame;
    const own = f.url.startsWith("file:");
    const key = own ? name(f) : `${name(f)} <- ${caller}`;
    byFn.set(key, (byFn.get(key) ?? 0) + node.selfSize);
    total += node.selfSize;
    for (const c of node.children) walk(c, own ? name(f) : caller);
  };
  walk(head, "(root)");
  return { total, top: [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top) };
}

/**
 * The garbage collections of the busiest isolate (the main thread's) in a
 * `--trace-gc-nvp` output: scavenges per 1000 tasks, their pause (µs per
 * task, main thread; helper threads' part apart), KB promoted per task,
 * mark-compacts and their pause.
 */
function gcLine(text: string, n: number): string {
  const byIsolate = new Map<string, Record<string, number | string>[]>();
  for (const m of text.matchAll(/\[\d+:(0x[0-9a-f]+):\d+\][^\n]*?GC: (\{[^\n]*\})/g)) {
    const list = byIsolate.get(m[1]) ?? [];
    list.push(JSON.parse(m[2]));
    byIsolate.set(m[1], list);
  }
  const gcs = [...byIsolate.values()].sort((a, b) => b.length - a.length)[0] ?? [];
  const sum = (list: typeof gcs, k: string) => list.reduce((a, e) => a + (Number(e[k]) || 0), 0);
  const sc = gcs.filter((e) => e.gc === "s");
  const mc = gcs.filter((e) => e.gc !== "s");
  return `GC (main isolate): ${(sc.length * 1000 / n).toFixed(1)} scavenges per 1000 tasks, ` +
    `pause ${(sum(sc, "pause") * 1000 / n).toFixed(2)} µs/task (helpers ${
      (sum(sc, "background.scavenge.parallel") * 1000 / n).toFixed(2)
    }), promoted ${(sum(sc, "promoted") / 1024 / n).toFixed(2)} KB/task, survived ${
      (sum(sc, "new_space_survived") / 1024 / n).toFixed(2)
    } KB/task; ${mc.length} mark-compacts, pause ${
      (sum(mc, "pause") * 1000 / n).toFixed(2)
    } µs/task`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      tasks: { type: "string", default: "2000" },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
      save: { type: "string" },
      json: { type: "string" },
      top: { type: "string", default: "15" },
      "v8-flags": { type: "string", default: DEFAULT_V8_FLAGS },
      loglevel: { type: "string" },
      events: { type: "boolean", short: "E", default: false },
      dashboard: { type: "boolean", default: false },
      drain: { type: "boolean", default: false },
      roundtrips: { type: "boolean", default: false },
      perf: { type: "string" },
      "no-sample": { type: "boolean", default: false },
      syscalls: { type: "boolean", default: false },
      "server-pid": { type: "string" },
      gc: { type: "boolean", default: false },
      heap: { type: "boolean", default: false },
      promoted: { type: "boolean", default: false },
      prefetch: { type: "string" },
      "time-limit": { type: "string" },
      "soft-time-limit": { type: "string" },
    },
  });
  const n = Number(values.tasks);
  const dbs = await openProbeDbs(values.redis);
  const { brokerUrl, backendUrl, broker, results } = dbs;
  const port = 9400 + Math.floor(Math.random() * 500);
  const worker = startBenchWorker({
    broker: brokerUrl,
    backend: backendUrl,
    queue: values.drain ? DRAIN_QUEUE : BENCH_QUEUE,
    denoArgs: [
      `--inspect=127.0.0.1:${port}`,
      ...(values["v8-flags"] === "none" && !values.gc ? [] : [
        `--v8-flags=${
          [
            values["v8-flags"] === "none" ? "" : values["v8-flags"],
            values.gc ? "--trace-gc-nvp" : "",
          ]
            .filter(Boolean).join(",")
        }`,
      ]),
    ],
    workerArgs: [
      ...(values.loglevel ? ["--loglevel", values.loglevel] : []),
      ...(values.events || values.dashboard ? ["-E"] : []),
      ...(values.prefetch ? ["--prefetch", values.prefetch] : []),
      ...(values["time-limit"] ? ["--time-limit", values["time-limit"]] : []),
      ...(values["soft-time-limit"] ? ["--soft-time-limit", values["soft-time-limit"]] : []),
    ],
  });
  const child = worker.child;
  let watcher: Awaited<ReturnType<typeof startDashboard>> | null = null;
  try {
    if (values.dashboard) {
      const env = { CELERY_BROKER_URL: brokerUrl, CELERY_RESULT_BACKEND: backendUrl };
      watcher = await startDashboard(ROOT_DIR, env, new Set());
    }
    await worker.ready;
    await new Promise((r) => setTimeout(r, 500));
    const idleKiB = rssKiB(child.pid, "VmRSS");
    const inspector = await Inspector.open(port);
    await inspector.send("Profiler.enable");
    await inspector.send("Profiler.setSamplingInterval", { interval: 200 });
    if (!values["no-sample"]) await inspector.send("Profiler.start");
    if (values.heap || values.promoted) {
      await inspector.send("HeapProfiler.enable");
      await inspector.send("HeapProfiler.startSampling", {
        samplingInterval: 512,
        includeObjectsCollectedByMajorGC: true,
        // --promoted: only what outlived the young generation (promoted, or live at the end).
        includeObjectsCollectedByMinorGC: !values.promoted,
      });
    }
    const enqueue = async () => {
      if (values.roundtrips) {
        for (let i = 0; i < n; i++) await (await noop.delay()).get();
        return;
      }
      for (let sent = 0; sent < n; sent += 1000) {
        await noop.delayMany(Array.from({ length: Math.min(1000, n - sent) }, () => []));
      }
    };
    // --roundtrips: warm up the path first (the profile and counts cover the measured ones only).
    if (values.roundtrips) {
      for (let i = 0; i < 100; i++) await (await noop.delay()).get();
      await results.flushdb();
    }
    // --drain: the tasks wait in a queue the worker does not consume until the profile starts.
    if (values.drain) await enqueue();
    const perf = values.perf
      ? new Deno.Command("perf", {
        args: ["record", "-F", "4000", "-g", "-p", String(child.pid), "-o", values.perf],
        stdout: "null",
        stderr: "null",
      }).spawn()
      : null;
    if (perf) await new Promise((r) => setTimeout(r, 300));
    const serverPid = values["server-pid"] === undefined
      ? localRedisPid()
      : Number(values["server-pid"]) || null;
    const stopCounting = values.syscalls
      ? await countKernelEvents({
        worker: child.pid,
        ...(serverPid === null ? {} : { "redis-server": serverPid }),
      })
      : null;
    const callsBefore = values.syscalls ? commandCalls(await broker.info("commandstats")) : null;
    const cpuBefore = threadCpuNs(child.pid);
    const outputBefore = worker.output().length;
    const othersBefore = otherCpuNs(serverPid, watcher?.pid ?? null);
    const started = performance.now();
    if (values.drain) await broker.rename(BENCH_QUEUE, DRAIN_QUEUE);
    else await enqueue();
    while (await results.dbsize() < n) await new Promise((r) => setTimeout(r, 20));
    const wallMs = performance.now() - started;
    const cpuAfter = threadCpuNs(child.pid);
    const gcText = values.gc ? worker.output().slice(outputBefore) : "";
    const othersAfter = otherCpuNs(serverPid, watcher?.pid ?? null);
    const kernel = stopCounting ? await stopCounting() : null;
    const callsAfter = callsBefore ? commandCalls(await broker.info("commandstats")) : null;
    if (perf) {
      perf.kill("SIGINT");
      await perf.status;
    }
    const threadUs = new Map(
      [...cpuAfter].map(([k, ns]) => [k, (ns - (cpuBefore.get(k) ?? 0)) / 1000]),
    );
    const sampled = !values["no-sample"];
    const profile = sampled
      ? (await inspector.send<{ profile: CpuProfile }>("Profiler.stop")).profile
      : { nodes: [], samples: [], timeDeltas: [], startTime: 0, endTime: 0 };
    const heap = values.heap || values.promoted
      ? (await inspector.send<{ profile: { head: HeapNode } }>("HeapProfiler.stopSampling"))
        .profile
      : null;
    const endKiB = rssKiB(child.pid, "VmRSS");
    const hwmKiB = rssKiB(child.pid, "VmHWM");
    inspector.close();
    if (values.save && sampled) await Deno.writeTextFile(values.save, JSON.stringify(profile));

    const { stages, functions, busyUs, totalUs } = summarize(profile);
    const perTask = (us: number) => (us / n).toFixed(1);
    console.log(
      `${n} tasks in ${(wallMs / 1000).toFixed(2)} s (${Math.round(n / (wallMs / 1000))}/s, ` +
        `load average ${Deno.loadavg()[0].toFixed(2)}); worker RSS idle ${
          (idleKiB / 1024).toFixed(1)
        } MiB, ` +
        `after ${(endKiB / 1024).toFixed(1)} MiB, VmHWM ${(hwmKiB / 1024).toFixed(1)} MiB`,
    );
    if (sampled) {
      console.log(
        `main thread: ${(busyUs / 1000).toFixed(0)} ms busy of ${
          (totalUs / 1000).toFixed(0)
        } ms sampled = ` +
          `${perTask(busyUs)} µs per task`,
      );
    }
    const cpuTotal = [...threadUs.values()].reduce((a, b) => a + b, 0);
    console.log(
      `process CPU per task (all threads, from /proc): ${perTask(cpuTotal)} µs = ` +
        [...threadUs].sort((a, b) => b[1] - a[1]).map(([k, us]) => `${k} ${perTask(us)}`)
          .join(", "),
    );
    console.log(
      `other processes' CPU per task: ` +
        [...othersAfter].map(([k, ns]) => `${k} ${perTask((ns - othersBefore.get(k)!) / 1000)}`)
          .join(", "),
    );
    if (values.gc) console.log(gcLine(gcText, n));
    if (heap) {
      const { total, top } = heapSummary(heap.head, Number(values.top));
      const what = values.promoted ? "allocation outliving the young generation" : "allocation";
      console.log(`main thread ${what} (sampled): ${(total / 1024 / n).toFixed(2)} KB per task`);
      for (const [fn, bytes] of top) {
        console.log(`  ${(bytes / 1024 / n).toFixed(3).padStart(7)} KB  ${fn}`);
      }
    }
    if (kernel) {
      console.log("kernel events per task (perf stat):");
      for (const line of kernelLines(kernel, n)) console.log(line);
    }
    if (callsBefore && callsAfter) {
      console.log(`Redis commands per task: ${commandsPerTask(callsBefore, callsAfter, n)}`);
    }
    console.log("\nper task, by stage (self time):");
    const sortedStages = [...stages].filter(([k]) => k !== "(idle)" && k !== "(program)").sort((
      a,
      b,
    ) => b[1] - a[1]);
    for (const [stage, us] of sortedStages) {
      console.log(
        `  ${perTask(us).padStart(7)} µs  ${
          (100 * us / busyUs).toFixed(1).padStart(5)
        } %  ${stage}`,
      );
    }
    console.log(`\ntop ${values.top} functions (self time per task):`);
    const sortedFns = [...functions].filter(([k]) =>
      !k.startsWith("(idle)") && !k.startsWith("(program)")
    )
      .sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
    for (const [fn, us] of sortedFns) console.log(`  ${perTask(us).padStart(7)} µs  ${fn}`);
    if (values.json) {
      await Deno.writeTextFile(
        values.json,
        JSON.stringify(
          {
            tasks: n,
            wallMs,
            rss: { idleKiB, endKiB, hwmKiB },
            busyUsPerTask: busyUs / n,
            threadCpuUsPerTask: Object.fromEntries([...threadUs].map(([k, v]) => [k, v / n])),
            otherCpuUsPerTask: Object.fromEntries(
              [...othersAfter].map(([k, ns]) => [k, (ns - othersBefore.get(k)!) / 1000 / n]),
            ),
            stagesUsPerTask: Object.fromEntries(sortedStages.map(([k, v]) => [k, v / n])),
            topFunctionsUsPerTask: Object.fromEntries(sortedFns.map(([k, v]) => [k, v / n])),
          },
          null,
          2,
        ) + "\n",
      );
    }
  } finally {
    await stopTree(child);
    const seen = await watcher?.stop();
    if (seen) {
      console.log(
        `dashboard: ${seen.events} events applied, ${seen.tasksHeld} tasks held, peak RSS ${
          (seen.peakRssKiB / 1024).toFixed(1)
        } MiB`,
      );
    }
    await dbs.close();
  }
}

if (import.meta.main) await main();
