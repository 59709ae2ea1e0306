// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/dashboard_cpu.ts`: the CPU a dashboard process spends
 * per event, end to end (Redis connection, envelope and body decoding, the
 * event receiver, the view model, timers, GC), apart from any worker. It
 * starts `worker.ts dashboard` on Redis db 11, publishes the `task.multi`
 * messages a worker with `-E` sends for N no-op tasks (received, started,
 * succeeded; 100 events a message; a heartbeat every second), paced at
 * `--rate` tasks per second, waits until the dashboard has applied them all,
 * and prints the process's CPU time (user + system, all threads, from
 * `/proc`) per event. A warm-up round of 5,000 tasks runs first, so the
 * figure is that of a dashboard that has been up a while (its task table
 * full, its code optimized). A per-event CPU figure depends much less on
 * other load on the machine than a drain's throughput does.
 *
 * Options: `--tasks N` (20,000), `--rate R` (3,000 tasks/s, about a
 * 2-core drain with `-E`), `--redis URL` (db 11 is used; nothing is
 * stored but the dashboard's binding, removed when it stops), `--rounds K`
 * (3 measured rounds; the median is printed too), `--profile` (also where
 * the main thread's time goes, by stage, from a V8 CPU profile of the last
 * round; the profiler adds its own cost to the CPU figure of that round),
 * `--top N` (15 functions), `--v8-flags F` (the dashboard's, e.g.
 * `--no-turbo-inlining` to see inlined functions' own time), `--compare DIR`
 * (a second dashboard run from another checkout, e.g. one made with
 * `git archive`, receives the same messages at the same time: a paired
 * comparison, each round under the same load), `--stream` (a reader follows
 * each dashboard's live stream, `/api/stream`, as an open browser tab does:
 * the dashboard then notes every task an event changes and sends the
 * changes once a second).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { encodeEnvelope } from "../src/protocol/envelope.ts";
import { encodeEventMessage, makeEvent, TASK_MULTI } from "../src/protocol/events.ts";
import type { CeleryEvent } from "../src/protocol/events.ts";
import { ROOT_DIR } from "./common.ts";
import { noopReceived } from "./noop_events.ts";
import { type CpuProfile, Inspector, summarize } from "./profile.ts";
import { stopTree } from "./proc.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    tasks: { type: "string", default: "20000" },
    rate: { type: "string", default: "3000" },
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    rounds: { type: "string", default: "3" },
    profile: { type: "boolean", default: false },
    top: { type: "string", default: "15" },
    "v8-flags": { type: "string" },
    compare: { type: "string" },
    stream: { type: "boolean", default: false },
  },
});
const n = Number(values.tasks);
const rate = Number(values.rate);
const rounds = Number(values.rounds);
const WARMUP_TASKS = 5000;
/** What the dashboard's main thread spends its time on, by source. */
const DASHBOARD_STAGES: [RegExp, string][] = [
  [/\/src\/protocol\/(envelope|json)\.ts/, "envelope and JSON decode"],
  [/\/src\/protocol\//, "protocol (other)"],
  [/\/src\/broker\//, "broker adapter"],
  [/\/src\/client\/events\.ts/, "event receiver"],
  [/\/src\/dashboard\/(task_table|view_model)\.ts/, "view model: tasks"],
  [/\/src\/dashboard\//, "dashboard (other)"],
  [/\/src\//, "celeriac (other)"],
  [/@logtape/, "logging (LogTape)"],
  [/ioredis|redis-parser|denque|cluster-key-slot|standard-as-callback/, "ioredis"],
  [/^node:|ext:deno_node|ext:node/, "Node compat"],
  [/^ext:/, "Deno runtime"],
];
const BATCH = 100;
const HOST = "celeriac@bench-dashboard-cpu";
const DB = 11;
const port = 5700 + Math.floor(Math.random() * 200);
const inspectPort = port + 1000;

const url = new URL(values.redis);
url.pathname = `/${DB}`;
const pub = new Redis(url.href);
const channel = `/${DB}.celeryev/${TASK_MULTI}`;
const heartbeatChannel = `/${DB}.celeryev/worker.heartbeat`;
let clock = 0;

/** The raw envelopes of `tasks` tasks' events, as a worker publishes them. */
function messages(tasks: number): string[] {
  const out: string[] = [];
  let batch: CeleryEvent[] = [];
  const sender = () => ({ hostname: HOST, pid: 4242, clock: ++clock });
  const push = (e: CeleryEvent) => {
    batch.push(e);
    if (batch.length < BATCH) return;
    const raw = encodeEnvelope(
      encodeEventMessage(batch, HOST),
      { exchange: "celeryev", routing_key: TASK_MULTI },
      crypto.randomUUID(),
    );
    out.push(raw);
    batch = [];
  };
  for (let i = 0; i < tasks; i++) {
    const uuid = crypto.randomUUID();
    push(makeEvent("task-received", noopReceived(uuid), sender()));
    push(makeEvent("task-started", { uuid }, sender()));
    push(makeEvent("task-succeeded", { uuid, result: "1", runtime: 0.00021 }, sender()));
  }
  if (batch.length) {
    batch.length = batch.length - (batch.length % 3); // whole tasks only
    if (batch.length) {
      out.push(encodeEnvelope(encodeEventMessage(batch, HOST), {
        exchange: "celeryev",
        routing_key: TASK_MULTI,
      }, crypto.randomUUID()));
    }
  }
  return out;
}

function heartbeat(processed: number): string {
  const e = makeEvent("worker-heartbeat", {
    freq: 2,
    active: 2,
    processed,
    loadavg: [1, 1, 1],
    sw_ident: "celeriac",
    sw_ver: "0.1.0",
    sw_sys: "Linux",
  }, { hostname: HOST, pid: 4242, clock: ++clock });
  return encodeEnvelope(
    encodeEventMessage(e, HOST),
    { exchange: "celeryev", routing_key: "worker.heartbeat" },
    crypto.randomUUID(),
  );
}

/** CPU time (user + system) of a process or thread from its `stat` file, in µs. */
function statCpuUs(path: string, which: "user" | "system" | "both" = "both"): number {
  const stat = Deno.readTextFileSync(path);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const user = Number(fields[11]), system = Number(fields[12]); // utime, stime (fields 14, 15)
  const ticks = which === "user" ? user : which === "system" ? system : user + system;
  return ticks * 10_000; // USER_HZ = 100
}

/** CPU time of a process (every thread), in µs. */
function cpuUs(pid: number): number {
  return statCpuUs(`/proc/${pid}/stat`);
}

/**
 * CPU time of a process's threads by thread name (main, V8 workers, Tokio), in µs; the
 * main thread's split into user and system time.
 */
function threadCpuUs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const name = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/comm`).trim()
        .replace(/[\d-]+$/, "");
      const path = `/proc/${pid}/task/${entry.name}/stat`;
      if (entry.name === String(pid)) {
        out.set("main user", statCpuUs(path, "user"));
        out.set("main system", statCpuUs(path, "system"));
        continue;
      }
      const us = statCpuUs(path);
      out.set(name, (out.get(name) ?? 0) + us);
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** A dashboard process under measurement. */
interface Watched {
  label: string;
  port: number;
  child: Deno.ChildProcess;
  /** Bytes read from its live stream (`--stream`). */
  streamed: number;
}

/** Read `d`'s live stream until `signal` aborts, as a browser tab following it. */
async function follow(d: Watched, signal: AbortSignal): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${d.port}/api/stream`, { signal });
  if (!res.ok || !res.body) throw new Error(`${d.label}: /api/stream answered ${res.status}`);
  try {
    for await (const chunk of res.body) d.streamed += chunk.length;
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}

async function eventsApplied(d: Watched): Promise<number> {
  const overview = await (await fetch(`http://127.0.0.1:${d.port}/api/overview`)).json();
  return overview.events as number;
}

/** Publish the messages paced at `rate` tasks/s; wait until every dashboard applied them. */
async function round(tasks: number, all: Watched[]): Promise<{ events: number; ms: number }> {
  const raws = messages(tasks);
  const events = raws.length * BATCH;
  const before = await Promise.all(all.map(eventsApplied));
  const perTick = Math.max(1, Math.round((rate * 3 / BATCH) / 20)); // messages per 50 ms
  const start = performance.now();
  let hb = 0;
  let sentEvents = 0;
  for (let i = 0; i < raws.length; i += perTick) {
    const due = start + (i / perTick) * 50;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const slice = raws.slice(i, i + perTick);
    await Promise.all(slice.map((raw) => pub.publish(channel, raw)));
    if (performance.now() - start > (hb + 1) * 2000) {
      hb++;
      await pub.publish(heartbeatChannel, heartbeat(i * BATCH / 3));
      sentEvents++;
    }
  }
  for (const [k, d] of all.entries()) {
    const target = before[k] + events + sentEvents;
    for (let i = 0;; i++) {
      const seen = await eventsApplied(d);
      if (seen >= target) break;
      if (i > 600) {
        throw new Error(`${d.label} applied ${seen - before[k]} of ${target - before[k]} events`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { events: events + sentEvents, ms: performance.now() - start };
}

function spawn(label: string, root: string, port: number, inspect: boolean): Watched {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(inspect ? [`--inspect=127.0.0.1:${inspectPort}`] : []),
      ...(values["v8-flags"] ? [`--v8-flags=${values["v8-flags"]}`] : []),
      "-A",
      "worker.ts",
      "dashboard",
      "--app",
      "bench/tasks.ts",
      "--port",
      String(port),
      "--read-only",
      "--nice",
      "0",
      "--loglevel",
      "WARNING",
    ],
    cwd: root,
    env: { CELERY_BROKER_URL: url.href, CELERY_RESULT_BACKEND: url.href },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  return { label, port, child, streamed: 0 };
}

async function answering(d: Watched): Promise<void> {
  for (let i = 0;; i++) {
    try {
      await (await fetch(`http://127.0.0.1:${d.port}/api/session`)).body?.cancel();
      return;
    } catch (err) {
      if (i > 300) throw new Error(`${d.label} did not answer on port ${d.port}: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const all = [spawn("this checkout", ROOT_DIR, port, values.profile!)];
if (values.compare) all.push(spawn(values.compare, values.compare, port + 1, false));
const streams = new AbortController();
const following: Promise<void>[] = [];
try {
  await Promise.all(all.map(answering));
  if (values.stream) following.push(...all.map((d) => follow(d, streams.signal)));
  await new Promise((r) => setTimeout(r, 500)); // subscribed
  await round(WARMUP_TASKS, all);
  const perEvent: number[][] = all.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const last = r === rounds - 1;
    const inspector = values.profile && last ? await Inspector.open(inspectPort) : null;
    if (inspector) {
      await inspector.send("Profiler.enable");
      await inspector.send("Profiler.setSamplingInterval", { interval: 200 });
      await inspector.send("Profiler.start");
    }
    const cpu0 = all.map((d) => cpuUs(d.child.pid));
    const threads0 = all.map((d) => threadCpuUs(d.child.pid));
    const { events, ms } = await round(n, all);
    const lines = all.map((d, k) => {
      const cpu = cpuUs(d.child.pid) - cpu0[k];
      perEvent[k].push(cpu / events);
      const threads = [...threadCpuUs(d.child.pid)].map(([name, us]) =>
        `${name} ${((us - (threads0[k].get(name) ?? 0)) / events).toFixed(1)}`
      ).filter((s) => !s.endsWith(" 0.0"));
      return `${d.label}: CPU ${(cpu / 1000).toFixed(0)} ms = ${(cpu / events).toFixed(1)} ` +
        `µs/event${inspector && k === 0 ? " (profiled)" : ""} (threads: ${threads.join(", ")})`;
    });
    console.log(
      `round ${r + 1}: ${events} events in ${(ms / 1000).toFixed(2)} s; ${lines.join("; ")}`,
    );
    if (inspector) {
      const { profile } = await inspector.send<{ profile: CpuProfile }>("Profiler.stop");
      inspector.close();
      const { stages, functions, busyUs } = summarize(profile, DASHBOARD_STAGES);
      const per = (us: number) => (us / events).toFixed(2).padStart(6);
      console.log(`main thread busy ${per(busyUs)} µs/event; by stage (self time):`);
      for (const [stage, us] of [...stages].sort((a, b) => b[1] - a[1])) {
        if (stage !== "(idle)" && stage !== "(program)") console.log(`  ${per(us)}  ${stage}`);
      }
      console.log(`top ${values.top} functions:`);
      const fns = [...functions].filter(([k]) => !k.startsWith("(idle)"))
        .sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
      for (const [fn, us] of fns) console.log(`  ${per(us)}  ${fn}`);
    }
  }
  const medians = perEvent.map(median);
  console.log(
    `median µs/event of dashboard CPU: ${
      all.map((d, k) => `${d.label} ${medians[k].toFixed(1)}`).join(", ")
    }${
      all.length > 1
        ? `; ratio (median of the rounds' ratios) ${
          median(perEvent[0].map((x, r) => x / perEvent[1][r])).toFixed(2)
        } (per round: ${perEvent[0].map((x, r) => (x / perEvent[1][r]).toFixed(2)).join(" ")})`
        : ""
    } (${n} tasks a round at ${rate} tasks/s; load average ${Deno.loadavg()[0].toFixed(2)})${
      values.stream
        ? `; live streams read: ${
          all.map((d) => `${(d.streamed / 1024).toFixed(0)} KiB`).join(", ")
        }`
        : ""
    }`,
  );
} finally {
  streams.abort();
  await Promise.allSettled(following);
  for (const d of all) await stopTree(d.child);
  pub.disconnect();
}
