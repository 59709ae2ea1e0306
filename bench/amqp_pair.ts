// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/amqp_pair.ts`: the RabbitMQ drain (rpc:// results)
 * of two sides alternated on one host, round by round, for a ratio that
 * does not move with the host's load between two bench runs.
 *
 * Each side gets a vhost of its own and one worker, started once: `raw`
 * (bench/peers/raw_amqp.mjs), `celeriac` (this checkout's worker, as the
 * bench runs it) or `celeriac:DIR` (the worker of another checkout, for an
 * A/B of a change). Each round drains both sides, in ABBA order (A first in
 * odd rounds): the side's worker is stopped (SIGSTOP), `--tasks` (20000)
 * no-ops are published to its `bench` queue with the same client and
 * message for every side (the bench's Celeriac messages, persistent,
 * confirmed, results to the durable `bench.replies`), the worker is
 * resumed, and the drain lasts until `bench.replies` holds every result
 * (polled every 20 ms; then purged). Printed: each round's rates and the
 * ratio A/B, then the median ratio and each side's median rate.
 *
 * Before each measured drain, the side drains `--prime` (2000) tasks of its
 * own, not counted: RabbitMQ's CPU per task (the bottleneck of both sides
 * on a 2-CPU host) depends on what the vhost did just before, and without
 * it the side that went first in a round (right after its own drain of the
 * round before) was up to 2x faster, whichever side it was; with 2000 no
 * order pattern showed (with 20000 it turned around; bench/README.md).
 * For each drain it also prints the worker's and the server's CPU per task
 * and how busy the server was just before (`--settle MS` waits that long
 * between the publish and the resume, measuring the server meanwhile).
 *
 * Options: `--a SIDE` (`celeriac`), `--b SIDE` (`raw`), `--tasks N`,
 * `--rounds R` (8), `--warmup W` (1 round, not counted), `--prime N`,
 * `--settle MS` (0), `--prefetch N` (Celeriac's `--prefetch`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import amqp from "amqplib";
import { Celery } from "../mod.ts";
import { DEFAULT_V8_FLAGS, median, PEERS_DIR } from "./common.ts";
import { REPLY_QUEUE } from "./amqp_workload.ts";
import { startBenchWorker, stopTree } from "./proc.ts";
import { type BenchVhost, createVhost } from "./rabbitmq.ts";
import { BENCH_QUEUE } from "./tasks.ts";
import { beamPid, processCpuNs, publishNoops } from "./profile_amqp.ts";

const SERVER = beamPid();
const serverMs = () => SERVER === null ? NaN : processCpuNs(SERVER) / 1e6;

interface Running {
  label: string;
  vhost: BenchVhost;
  child: Deno.ChildProcess;
  client: Celery;
  conn: Awaited<ReturnType<typeof amqp.connect>>;
  ch: Awaited<ReturnType<Awaited<ReturnType<typeof amqp.connect>>["createChannel"]>>;
  rates: number[];
  notes: string[];
}

function spawn(side: string, url: string, prefetch?: string): Deno.ChildProcess {
  if (side === "raw") {
    return new Deno.Command("node", {
      args: ["raw_amqp.mjs", "worker"],
      cwd: PEERS_DIR,
      env: { BENCH_BROKER_URL: url },
      stdout: "null",
      stderr: "inherit",
    }).spawn();
  }
  return startBenchWorker({
    broker: url,
    backend: "rpc://",
    queue: BENCH_QUEUE,
    denoArgs: [`--v8-flags=${DEFAULT_V8_FLAGS}`],
    workerArgs: prefetch ? ["--prefetch", prefetch] : [],
    root: side.startsWith("celeriac:") ? side.slice("celeriac:".length) : undefined,
  }).child;
}

async function start(side: string, prefetch?: string): Promise<Running> {
  const vhost = await createVhost("pair");
  const conn = await amqp.connect(vhost.url);
  const ch = await conn.createChannel();
  await ch.assertQueue(BENCH_QUEUE, { durable: true });
  await ch.assertQueue(REPLY_QUEUE, { durable: true });
  const client = new Celery({ broker: vhost.url, backend: "rpc://", defaultQueue: BENCH_QUEUE });
  const child = spawn(side, vhost.url, prefetch);
  while ((await ch.checkQueue(BENCH_QUEUE)).consumerCount === 0) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 500));
  return { label: side, vhost, child, client, conn, ch, rates: [], notes: [] };
}

async function drain(s: Running, n: number, settleMs: number): Promise<number> {
  Deno.kill(s.child.pid, "SIGSTOP");
  await publishNoops(s.client, n);
  const idle = serverMs();
  const idleAt = performance.now();
  await new Promise((r) => setTimeout(r, settleMs));
  const started = performance.now();
  const busy = serverMs();
  const workerBefore = processCpuNs(s.child.pid);
  Deno.kill(s.child.pid, "SIGCONT");
  while ((await s.ch.checkQueue(REPLY_QUEUE)).messageCount < n) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const wall = performance.now() - started;
  const rate = n / (wall / 1000);
  const workerUs = (processCpuNs(s.child.pid) - workerBefore) / 1000 / n;
  s.notes.push(
    `worker ${workerUs.toFixed(1)} µs/task, server ${
      ((serverMs() - busy) * 1000 / n).toFixed(1)
    } µs/task, busy ${((busy - idle) / (started - idleAt) * 100).toFixed(0)} % before, ${
      ((serverMs() - busy) / wall * 100).toFixed(0)
    } % during`,
  );
  await s.ch.purgeQueue(REPLY_QUEUE);
  return rate;
}

async function stop(s: Running): Promise<void> {
  try {
    Deno.kill(s.child.pid, "SIGCONT");
  } catch {
    // already gone
  }
  await stopTree(s.child);
  await s.client.close();
  await s.conn.close().catch(() => {});
  await s.vhost.remove();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      a: { type: "string", default: "celeriac" },
      b: { type: "string", default: "raw" },
      tasks: { type: "string", default: "20000" },
      rounds: { type: "string", default: "8" },
      warmup: { type: "string", default: "1" },
      prefetch: { type: "string" },
      settle: { type: "string", default: "0" },
      prime: { type: "string", default: "2000" },
    },
  });
  const n = Number(values.tasks);
  const sides: Running[] = [];
  try {
    sides.push(await start(values.a, values.prefetch));
    sides.push(await start(values.b, values.prefetch));
    const [a, b] = sides;
    const ratios: number[] = [];
    const warmup = Number(values.warmup);
    for (let round = 1 - warmup; round <= Number(values.rounds); round++) {
      const order = round % 2 ? [a, b] : [b, a];
      const rates = new Map<Running, number>();
      for (const s of order) {
        if (Number(values.prime) > 0) {
          await drain(s, Number(values.prime), 0);
          s.notes.pop();
        }
        rates.set(s, await drain(s, n, Number(values.settle)));
      }
      const line = `${a.label} ${Math.round(rates.get(a)!)}/s, ${b.label} ${
        Math.round(rates.get(b)!)
      }/s, ratio ${(rates.get(a)! / rates.get(b)!).toFixed(3)} (load ${
        Deno.loadavg()[0].toFixed(2)
      }; ${order.map((s) => `${s.label}: ${s.notes.pop()}`).join("; ")})`;
      if (round < 1) {
        console.log(`warm-up: ${line}`);
        continue;
      }
      a.rates.push(rates.get(a)!);
      b.rates.push(rates.get(b)!);
      ratios.push(rates.get(a)! / rates.get(b)!);
      console.log(`round ${round}: ${line}`);
    }
    console.log(
      `median ratio ${median(ratios).toFixed(3)} (range ${Math.min(...ratios).toFixed(3)}–${
        Math.max(...ratios).toFixed(3)
      }); median ${a.label} ${Math.round(median(a.rates))}/s, ${b.label} ${
        Math.round(median(b.rates))
      }/s`,
    );
  } finally {
    for (const s of sides) await stop(s);
  }
}

if (import.meta.main) await main();
