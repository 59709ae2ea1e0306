// deno-lint-ignore-file no-console
/**
 * `deno task bench`: Celeriac against Python Celery 5.2.6 in one run, on
 * Redis (Redis results) and on RabbitMQ (rpc:// results) — drain
 * throughput, sequential round-trip latency and worker memory. See
 * bench/README.md for what is measured and the caveats.
 *
 * Options: `--broker redis|amqp|all` (all), `--tasks N` (20000),
 * `--roundtrips N` (2000), `--cpu-tasks N` (2000; workload D, 0 skips it),
 * `--enqueue N` (workload C, default `--tasks`; 0 skips it), `--quick`
 * (a smoke run: 500 tasks, 100 round trips, 100 CPU tasks, chord 50, burst 100),
 * `--only celeriac|celery|bullmq|raw`, `--prefetch N`
 * (Celeriac worker; default: the worker's own), `--v8-flags F` (Celeriac
 * worker; default none given: the worker applies its own
 * `--max-semi-space-size=1,--no-allocation-site-pretenuring,--no-short-builtin-calls,--single-threaded-gc,--expose-gc,--enable-experimental-regexp-engine,--enable-experimental-regexp-engine-on-excessive-backtracks`; `none` for
 * V8's defaults), `--redis URL`
 * (server; the bench uses its dbs 14 and 15), `--amqp URL` (server; the
 * bench uses a vhost of its own), `--chord N` (1000; header members of the
 * Redis chord workload, 0 skips it), `-E` / `--task-events` (both workers
 * send task events: compare a run with and without it for what events cost),
 * `--dashboard` (as `-E`, and a Celeriac dashboard watches each drain),
 * `--burst N` (1000; tasks of workload E, a burst onto an idle worker on
 * Redis, Celeriac and BullMQ; 0 skips it).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runAmqp } from "./amqp_workload.ts";
import { type BurstResult, burstSummary, runBurst } from "./burst_workload.ts";
import { type ChordResult, chordSummary, runChord } from "./chord_workload.ts";
import {
  BENCH_DIR,
  type BrokerKind,
  BROKERS,
  cleanups,
  CONCURRENCY,
  DONE_POLL_MS,
  live,
  MEMORY_SAMPLE_MS,
  type Options,
  PEERS,
  PYTHON,
  ROOT_DIR,
  type Side,
  SIDES,
  TAKE_POLL_MS,
} from "./common.ts";
import { stopTree } from "./proc.ts";
import { AMQP_SERVER } from "./rabbitmq.ts";
import { BACKEND_DB, BROKER_DB, runRedis } from "./redis_workload.ts";
import { printTable, summaries } from "./report.ts";
import type { SideReport } from "./workloads.ts";

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`${flag} needs a whole number >= 1`);
  return n;
}

function parseOptions(args: string[]): Options & { chord: number; burst: number } {
  const { values } = parseArgs({
    args,
    options: {
      tasks: { type: "string" },
      roundtrips: { type: "string" },
      only: { type: "string" },
      broker: { type: "string" },
      prefetch: { type: "string" },
      "v8-flags": { type: "string" },
      "task-events": { type: "boolean", short: "E" },
      redis: { type: "string" },
      amqp: { type: "string" },
      chord: { type: "string" },
      burst: { type: "string" },
      dashboard: { type: "boolean" },
      "cpu-tasks": { type: "string" },
      enqueue: { type: "string" },
      quick: { type: "boolean" },
    },
  });
  const only = values.only ?? null;
  if (only !== null && ![...SIDES, ...PEERS].includes(only as Side)) {
    throw new TypeError(`--only must be "celeriac", "celery", "bullmq" or "raw", got "${only}"`);
  }
  const broker = values.broker ?? "all";
  if (broker !== "all" && !(BROKERS as readonly string[]).includes(broker)) {
    throw new TypeError(`--broker must be "redis", "amqp" or "all", got "${broker}"`);
  }
  const quick = values.quick ?? false;
  const count = (value: string | undefined, flag: string, full: number, small: number) =>
    value === "0" ? 0 : positiveInt(value, flag) ?? (quick ? small : full);
  const tasks = count(values.tasks, "--tasks", 20_000, 500);
  return {
    tasks,
    roundtrips: count(values.roundtrips, "--roundtrips", 2_000, 100),
    cpuTasks: count(values["cpu-tasks"], "--cpu-tasks", 2_000, 100),
    enqueueTasks: count(values.enqueue, "--enqueue", tasks, tasks),
    only: only as Side | null,
    broker: broker as BrokerKind | "all",
    prefetch: positiveInt(values.prefetch, "--prefetch"),
    v8Flags: values["v8-flags"] === "none" ? null : values["v8-flags"] ?? "",
    taskEvents: values["task-events"] ?? false,
    redis: values.redis ?? "redis://127.0.0.1:6379",
    amqp: values.amqp ?? AMQP_SERVER,
    chord: count(values.chord, "--chord", 1000, 50),
    burst: count(values.burst, "--burst", 1000, 100),
    dashboard: values.dashboard ?? false,
  };
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
    "protocol.ts",
    "src",
    "deno.json",
  ]);
  const n = dirty ? dirty.split("\n").length : 0;
  return n ? `${head} + uncommitted changes to ${n} file(s)` : head;
}

async function main(): Promise<void> {
  const opts = parseOptions(Deno.args);
  const started = performance.now();
  const measured = await revision();
  const loadAtStart = Deno.loadavg();

  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    console.error("\ninterrupted: stopping workers, flushing the bench databases / vhost");
    Promise.allSettled([...live].map((c) => stopTree(c, 5_000)))
      .then(() => Promise.allSettled([...cleanups].map((c) => c())))
      .finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const out: Partial<Record<BrokerKind, Partial<Record<Side, SideReport>>>> = {};
  let amqpVhost: string | null = null;
  let amqpReplies: unknown = null;
  let chordResults: Partial<Record<Side, ChordResult>> | null = null;
  let burstResults: Partial<Record<Side, BurstResult>> | null = null;
  try {
    console.log(
      `Celeriac at ${measured}; ${opts.tasks} tasks, ${opts.roundtrips} round trips, concurrency ${CONCURRENCY}, ` +
        `celeriac prefetch ${
          opts.prefetch ?? "worker default"
        }, ${navigator.hardwareConcurrency} CPU(s), load average ${
          loadAtStart.map((x) => x.toFixed(2)).join(" ")
        }.`,
    );
    if (opts.broker !== "amqp") out.redis = await runRedis(opts);
    if (opts.broker !== "amqp" && opts.chord > 0) chordResults = await runChord(opts, opts.chord);
    if (opts.broker !== "amqp" && opts.burst > 0) {
      burstResults = await runBurst(opts, opts.burst);
      for (const [side, r] of Object.entries(burstResults)) {
        const report = out.redis?.[side as Side];
        if (report) report.burst = r;
      }
    }
    if (opts.broker !== "redis") {
      const amqp = await runAmqp(opts);
      out.amqp = amqp.results;
      amqpVhost = amqp.vhost;
      amqpReplies = amqp.replies;
    }
  } finally {
    await Promise.allSettled([...live].map((c) => stopTree(c)));
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }

  const lines: string[] = [];
  for (const broker of BROKERS) {
    const r = out[broker];
    if (!r) continue;
    const title = broker === "redis" ? "Redis (redis results)" : "RabbitMQ (rpc:// results)";
    printTable(title, opts, r);
    lines.push(...summaries(broker, r));
  }
  if (chordResults) lines.push(chordSummary(chordResults));
  if (burstResults) lines.push(burstSummary(burstResults));
  console.log();
  for (const l of lines) console.log(l);
  for (const broker of BROKERS) {
    for (const side of [...SIDES, ...PEERS]) {
      const r = out[broker]?.[side]?.drain;
      if (!r) continue;
      const text = r.workerOutput;
      console.log(
        `\n${broker} ${side} worker (first run): stopped with ${r.stoppedWith}; output ${
          text ? `(${text.split("\n").length} line(s)):\n${text}` : "empty"
        }`,
      );
    }
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
      rabbitmq: {
        server: new URL(opts.amqp).host,
        version: (await capture("rabbitmqctl", ["version"])) || null,
        vhost: amqpVhost,
      },
      concurrency: CONCURRENCY,
      pollMs: { firstTake: TAKE_POLL_MS, done: DONE_POLL_MS, memory: MEMORY_SAMPLE_MS },
    },
    results: out,
    amqpReplies,
    chord: chordResults,
    summary: lines,
  };
  await Deno.writeTextFile(`${BENCH_DIR}results.json`, JSON.stringify(record, null, 2) + "\n");
}

if (import.meta.main) await main();
