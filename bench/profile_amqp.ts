// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/profile_amqp.ts`: what one task of the RabbitMQ drain
 * (rpc:// results) costs each process, for Celeriac or the raw amqplib
 * loop (`--side raw`, bench/peers/raw_amqp.mjs), on a vhost of its own.
 *
 * The worker starts on an empty `bench` queue (results to the durable
 * `bench.replies`, as the bench's drain), and once it consumes it is
 * stopped (SIGSTOP); `--tasks` (20000) no-ops are published (the bench's
 * Celeriac messages, with publisher confirms), and the worker is resumed
 * (SIGCONT): it drains a full queue, as in the bench, with nothing else
 * running. Measured from the resume until `bench.replies` holds every
 * result (polled every 20 ms), and printed per task:
 *
 * - CPU time of every thread of the worker (Celeriac: main thread, Web
 *   Workers, V8's helpers, Deno's I/O threads; from `/proc`), of the
 *   RabbitMQ server (`beam.smp`, all threads) and of this process;
 * - bytes and socket reads/writes the server counted on each of the
 *   worker's connections (`rabbitmqctl list_connections`), and its
 *   channels (confirm mode, prefetch);
 * - with `--sample` (Celeriac only), the main thread's busy time by stage
 *   and the top functions by self time from a V8 CPU profile (wall-clock
 *   samples: a thread preempted by the server it just woke counts as busy;
 *   the profiler's own cost shows in the CPU figures of that run);
 *   `--save FILE` keeps it; with `--heap` also V8's sampling heap profile
 *   of the main thread: KB allocated per task, in all and by function
 *   (`FILE.heap` with `--save`).
 *
 * Options: `--side celeriac|raw`, `--tasks N`, `--rounds R` (drains in a
 * row on the same worker, each printed; default 1), `--sample`, `--heap`,
 * `--save FILE`, `--top N` (15), `--v8-flags F` (Celeriac's; default the
 * bench's), `--prefetch N` (Celeriac's `--prefetch`), `--strace FILE`
 * (system-call counts of the worker per round, `strace -c`, in
 * `FILE.<round>`), `--perf FILE` (`perf record -g` of the worker per
 * round, in `FILE.<round>`; add `--perf-basic-prof` to `--v8-flags` for
 * JavaScript names).
 *
 * @module
 */

import { parseArgs } from "node:util";
import amqp from "amqplib";
import { Celery } from "../mod.ts";
import { encodeTaskMessage } from "../protocol.ts";
import { DEFAULT_V8_FLAGS, PEERS_DIR } from "./common.ts";
import { REPLY_QUEUE } from "./amqp_workload.ts";
import { type CpuProfile, type HeapNode, heapSummary, Inspector, summarize } from "./profile.ts";
import { startBenchWorker, stopTree, threadCpuNs, threadSchedstats } from "./proc.ts";
import { createVhost, rabbitmqctl } from "./rabbitmq.ts";
import { BENCH_QUEUE } from "./tasks.ts";

/**
 * The RabbitMQ server's process (`beam.smp`), or null when not exactly one runs here.
 *
 * @example
 * ```ts ignore
 * const pid = beamPid();
 * ```
 */
export function beamPid(): number | null {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/comm`).trim() === "beam.smp") {
        pids.push(Number(e.name));
      }
    } catch {
      // the process ended while listing
    }
  }
  return pids.length === 1 ? pids[0] : null;
}

/**
 * CPU time so far (ns) of all threads of a process.
 *
 * @example
 * ```ts ignore
 * const ns = processCpuNs(Deno.pid);
 * ```
 */
export function processCpuNs(pid: number): number {
  return [...threadSchedstats(pid).values()].reduce((sum, t) => sum + t.cpu, 0);
}

/**
 * Publishes `n` bench.noop task messages (rpc:// replies to REPLY_QUEUE) to
 * the bench queue, 1000 at a time.
 *
 * @example
 * ```ts
 * await publishNoops(client, 20_000);
 * ```
 */
export async function publishNoops(client: Celery, n: number): Promise<void> {
  for (let sent = 0; sent < n; sent += 1000) {
    await Promise.all(
      Array.from({ length: Math.min(1000, n - sent) }, () =>
        client.publish(
          encodeTaskMessage({
            task: "bench.noop",
            id: crypto.randomUUID(),
            args: [],
            kwargs: {},
            now: new Date(),
            origin: "bench@celeriac",
            replyTo: REPLY_QUEUE,
          }),
          { routingKey: BENCH_QUEUE },
        )),
    );
  }
}

/** Per connection of the vhost: name → [recv_oct, send_oct, recv_cnt, send_cnt]. */
async function connectionCounters(vhost: string): Promise<Map<string, number[]>> {
  const out = await rabbitmqctl(
    "list_connections",
    "-q",
    "--no-table-headers",
    "vhost",
    "client_properties",
    "recv_oct",
    "send_oct",
    "recv_cnt",
    "send_cnt",
  );
  const counters = new Map<string, number[]>();
  for (const line of out.trim().split("\n")) {
    const cols = line.split("\t");
    if (cols[0] !== vhost) continue;
    const name = cols[1].match(/connection_name","([^"]+)"/)?.[1] ??
      cols[1].match(/product","([^"]+)"/)?.[1] ?? "?";
    const key = counters.has(name) ? `${name} #${counters.size}` : name;
    counters.set(key, cols.slice(2).map(Number));
  }
  return counters;
}

/** The worker's channels: confirm mode, prefetch, consumers. */
async function channels(vhost: string): Promise<string> {
  const out = await rabbitmqctl(
    "list_channels",
    "-q",
    "--no-table-headers",
    "vhost",
    "number",
    "confirm",
    "prefetch_count",
    "consumer_count",
  );
  return out.trim().split("\n").filter((l) => l.startsWith(`${vhost}\t`))
    .map((l) => {
      const [, n, confirm, prefetch, consumers] = l.split("\t");
      return `#${n} confirm ${confirm} prefetch ${prefetch} consumers ${consumers}`;
    }).join("; ");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      side: { type: "string", default: "celeriac" },
      tasks: { type: "string", default: "20000" },
      rounds: { type: "string", default: "1" },
      sample: { type: "boolean", default: false },
      save: { type: "string" },
      top: { type: "string", default: "15" },
      "v8-flags": { type: "string", default: DEFAULT_V8_FLAGS },
      prefetch: { type: "string" },
      strace: { type: "string" },
      perf: { type: "string" },
      heap: { type: "boolean", default: false },
    },
  });
  const n = Number(values.tasks);
  const raw = values.side === "raw";
  const server = beamPid();
  const vhost = await createVhost("profile");
  const conn = await amqp.connect(vhost.url);
  const ch = await conn.createConfirmChannel();
  const client = new Celery({ broker: vhost.url, backend: "rpc://", defaultQueue: BENCH_QUEUE });
  const port = 9400 + Math.floor(Math.random() * 500);
  let child: Deno.ChildProcess | null = null;
  try {
    await ch.assertQueue(BENCH_QUEUE, { durable: true });
    await ch.assertQueue(REPLY_QUEUE, { durable: true });
    child = raw
      ? new Deno.Command("node", {
        args: ["raw_amqp.mjs", "worker"],
        cwd: PEERS_DIR,
        env: { BENCH_BROKER_URL: vhost.url },
        stdout: "null",
        stderr: "inherit",
      }).spawn()
      : startBenchWorker({
        broker: vhost.url,
        backend: "rpc://",
        queue: BENCH_QUEUE,
        denoArgs: [
          ...(values.sample ? [`--inspect=127.0.0.1:${port}`] : []),
          ...(values["v8-flags"] === "none" ? [] : [`--v8-flags=${values["v8-flags"]}`]),
        ],
        workerArgs: values.prefetch ? ["--prefetch", values.prefetch] : [],
      }).child;
    const pid = child.pid;
    while ((await ch.checkQueue(BENCH_QUEUE)).consumerCount === 0) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500));
    const inspector = values.sample && !raw ? await Inspector.open(port) : null;
    console.log(`${values.side}: ${await channels(vhost.name)}`);
    for (let round = 1; round <= Number(values.rounds); round++) {
      // The inspector answers only while the worker runs: the profile starts before the stop.
      if (inspector) {
        await inspector.send("Profiler.enable");
        await inspector.send("Profiler.setSamplingInterval", { interval: 200 });
        await inspector.send("Profiler.start");
        if (values.heap) {
          await inspector.send("HeapProfiler.enable");
          await inspector.send("HeapProfiler.startSampling", {
            samplingInterval: 512,
            includeObjectsCollectedByMajorGC: true,
            includeObjectsCollectedByMinorGC: true,
          });
        }
      }
      Deno.kill(pid, "SIGSTOP");
      await publishNoops(client, n);
      const bytesBefore = await connectionCounters(vhost.name);
      const cpuBefore = threadCpuNs(pid);
      const serverBefore = server === null ? 0 : processCpuNs(server);
      const selfBefore = processCpuNs(Deno.pid);
      const strace = values.strace
        ? new Deno.Command("strace", {
          args: ["-f", "-c", "-o", `${values.strace}.${round}`, "-p", String(pid)],
          stdout: "null",
          stderr: "null",
        }).spawn()
        : null;
      const perf = values.perf
        ? new Deno.Command("perf", {
          args: ["record", "-F", "2000", "-g", "-p", String(pid), "-o", `${values.perf}.${round}`],
          stdout: "null",
          stderr: "null",
        }).spawn()
        : null;
      if (strace || perf) await new Promise((r) => setTimeout(r, 500));
      const started = performance.now();
      Deno.kill(pid, "SIGCONT");
      while ((await ch.checkQueue(REPLY_QUEUE)).messageCount < n) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const wallMs = performance.now() - started;
      for (const tracer of [strace, perf]) {
        tracer?.kill("SIGINT");
        await tracer?.status;
      }
      const cpuAfter = threadCpuNs(pid);
      const serverUs = server === null ? NaN : (processCpuNs(server) - serverBefore) / 1000;
      const selfUs = (processCpuNs(Deno.pid) - selfBefore) / 1000;
      const profile = inspector
        ? (await inspector.send<{ profile: CpuProfile }>("Profiler.stop")).profile
        : null;
      const heap = inspector && values.heap
        ? (await inspector.send<{ profile: { head: HeapNode } }>("HeapProfiler.stopSampling"))
          .profile
        : null;
      const bytesAfter = await connectionCounters(vhost.name);
      await ch.purgeQueue(REPLY_QUEUE);
      const perTask = (us: number) => (us / n).toFixed(1);
      const threadUs = [...cpuAfter].map(([k, ns]) => [k, (ns - (cpuBefore.get(k) ?? 0)) / 1000])
        .filter(([, us]) => (us as number) > 0) as [string, number][];
      const workerUs = threadUs.reduce((a, [, us]) => a + us, 0);
      console.log(
        `round ${round}: ${n} tasks in ${(wallMs / 1000).toFixed(2)} s = ${
          Math.round(n / (wallMs / 1000))
        }/s (load ${Deno.loadavg()[0].toFixed(2)}); CPU µs/task: worker ${perTask(workerUs)} (${
          threadUs.sort((a, b) => b[1] - a[1]).map(([k, us]) => `${k} ${perTask(us)}`).join(", ")
        }), rabbitmq ${perTask(serverUs)}, bench ${perTask(selfUs)}`,
      );
      for (const [name, after] of bytesAfter) {
        const before = bytesBefore.get(name) ?? [0, 0, 0, 0];
        const d = after.map((v, i) => (v - before[i]) / n);
        if (d.every((v) => v < 0.01)) continue;
        console.log(
          `  connection ${name}: server received ${d[0].toFixed(1)} B/task in ${
            d[2].toFixed(3)
          } reads, sent ${d[1].toFixed(1)} B/task in ${d[3].toFixed(3)} writes`,
        );
      }
      if (heap) {
        if (values.save) await Deno.writeTextFile(`${values.save}.heap`, JSON.stringify(heap));
        const { total, top } = heapSummary(heap.head, Number(values.top));
        console.log(`  main thread allocation (sampled): ${(total / 1024 / n).toFixed(2)} KB/task`);
        for (const [fn, bytes] of top) {
          console.log(`  ${(bytes / 1024 / n).toFixed(3).padStart(7)} KB  ${fn}`);
        }
      }
      if (profile) {
        if (values.save) await Deno.writeTextFile(values.save, JSON.stringify(profile));
        // The first sample after the resume spans the whole stop: it is not counted.
        const timeDeltas = profile.timeDeltas.map((dt) => dt > 50_000 ? 0 : dt);
        const { stages, functions, busyUs } = summarize({ ...profile, timeDeltas });
        console.log(`  main thread sampled busy ${perTask(busyUs)} µs/task; by stage:`);
        const skip = (k: string) => k.startsWith("(idle)") || k.startsWith("(program)");
        for (const [k, us] of [...stages].filter(([k]) => !skip(k)).sort((a, b) => b[1] - a[1])) {
          console.log(`  ${perTask(us).padStart(7)} µs  ${k}`);
        }
        console.log(`  top functions (self):`);
        for (
          const [k, us] of [...functions].filter(([k]) => !skip(k)).sort((a, b) => b[1] - a[1])
            .slice(0, Number(values.top))
        ) console.log(`  ${perTask(us).padStart(7)} µs  ${k}`);
      }
    }
    inspector?.close();
  } finally {
    if (child) {
      try {
        Deno.kill(child.pid, "SIGCONT");
      } catch {
        // already gone
      }
      await stopTree(child);
    }
    await client.close();
    await conn.close();
    await vhost.remove();
  }
}

if (import.meta.main) await main();
