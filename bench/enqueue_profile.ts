// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/enqueue_profile.ts`: the client's enqueue rate on
 * Redis (workload C) and where its time goes, comparable across changes.
 * Sends N no-op tasks with `delayMany` in batches of B (the bench's
 * batches of 1,000), then M tasks with `delay()` one at a time, to a queue
 * of its own (purged after each step), R rounds, and prints each round's rates
 * and their medians. With `--prof` the rounds also run under V8's CPU
 * profiler (in this process, through `node:inspector`) and it prints, for
 * the batches and for the single calls, the main thread's time per task by
 * stage (message building, JSON encoding, envelope and base64, RESP
 * framing and socket, the client, the garbage collector, the rest; the
 * profiler's own cost apart) and the top functions by self time.
 *
 * Options: `--tasks N` (20000), `--batch B` (1000), `--single M` (2000;
 * 0 skips), `--rounds R` (5), `--redis URL` (redis://127.0.0.1:6379/10:
 * only the queue it makes is touched), `--prof`, `--top N` (15).
 *
 * @module
 */

import { Session } from "node:inspector";
import { parseArgs } from "node:util";
import { Celery } from "../mod.ts";
import { type CpuProfile, summarize } from "./profile.ts";

/** What a batch enqueue's self time is spent on, by source. */
const STAGES: [RegExp, string][] = [
  [/\/src\/protocol\/(json|json_fields)\.ts/, "JSON encode"],
  [/\/src\/protocol\/(task_message|task_template|repr|serializers|time)\.ts/, "message building"],
  [/\/src\/protocol\/envelope\.ts/, "envelope + base64"],
  [
    /\/src\/broker\/(resp_writer|resp_connection|resp_reader|resp_scripts)\.ts/,
    "RESP frame/socket",
  ],
  [/\/src\/broker\//, "broker (other)"],
  [/\/src\/client\//, "client (send, results)"],
  [/\/src\//, "celeriac (other)"],
  [/ext:deno_node\/inspector/, "(the profiler itself)"],
  [/^node:|ext:deno_node|ext:node/, "Node compat"],
  [/^ext:/, "Deno runtime"],
];

const { values } = parseArgs({
  args: Deno.args,
  options: {
    tasks: { type: "string", default: "20000" },
    batch: { type: "string", default: "1000" },
    single: { type: "string", default: "2000" },
    rounds: { type: "string", default: "5" },
    redis: { type: "string", default: "redis://127.0.0.1:6379/10" },
    prof: { type: "boolean", default: false },
    top: { type: "string", default: "15" },
  },
});
const tasks = Number(values.tasks);
const batchSize = Number(values.batch);
const single = Number(values.single);
const rounds = Number(values.rounds);
for (const [flag, v] of [["--tasks", tasks], ["--batch", batchSize], ["--rounds", rounds]]) {
  if (!Number.isInteger(v) || (v as number) < 1) throw new TypeError(`${flag} must be >= 1`);
}

/** One fixed queue (runs go under the heavy lock, one at a time): no keys pile up. */
const queue = "bench.enqueue_profile";
const app = new Celery({ broker: values.redis, backend: values.redis, defaultQueue: queue });
const noop = app.remoteTask<[], number>("bench.noop");

async function clear(): Promise<void> {
  const broker = await app.broker();
  await broker.purge(queue);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function batchRound(): Promise<number> {
  const start = performance.now();
  for (let sent = 0; sent < tasks; sent += batchSize) {
    const size = Math.min(batchSize, tasks - sent);
    await noop.delayMany(Array.from({ length: size }, () => [] as []));
  }
  return tasks / ((performance.now() - start) / 1000);
}

async function singleRound(): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < single; i++) await noop.delay();
  return single / ((performance.now() - start) / 1000);
}

const session = new Session();
const post = <T>(method: string, params: object = {}) =>
  new Promise<T>((resolve, reject) =>
    session.post(method, params, (err, res) => err ? reject(err) : resolve(res as T))
  );

// Warm-up: connects, declares the queue, compiles the hot path.
await noop.delayMany(Array.from({ length: batchSize }, () => [] as []));
for (let i = 0; i < 100; i++) await noop.delay();
await clear();
if (values.prof) {
  session.connect();
  await post("Profiler.enable");
  await post("Profiler.setSamplingInterval", { interval: 100 });
}
const batchRates: number[] = [];
const singleRates: number[] = [];
const batchProfiles: CpuProfile[] = [];
const singleProfiles: CpuProfile[] = [];
/** `step()`, under the profiler when `--prof` is given (its profile added to `into`). */
async function profiled<T>(into: CpuProfile[], step: () => Promise<T>): Promise<T> {
  if (!values.prof) return await step();
  await post("Profiler.start");
  const out = await step();
  into.push((await post<{ profile: CpuProfile }>("Profiler.stop")).profile);
  return out;
}
for (let r = 0; r < rounds; r++) {
  batchRates.push(await profiled(batchProfiles, batchRound));
  await clear();
  if (single > 0) singleRates.push(await profiled(singleProfiles, singleRound));
  await clear();
  console.log(
    `round ${r + 1}: batch ${Math.round(batchRates[r])}/s` +
      (single > 0 ? `, single ${Math.round(singleRates[r])}/s` : ""),
  );
}
const range = (xs: number[]) =>
  `${Math.round(median(xs))}/s (${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))})`;
console.log(`median batch (delayMany of ${batchSize}, ${tasks} tasks): ${range(batchRates)}`);
if (single > 0) {
  console.log(`median single (delay() in a loop, ${single} tasks): ${range(singleRates)}`);
}
console.log(JSON.stringify({
  batch: median(batchRates),
  single: single > 0 ? median(singleRates) : null,
}));

/** Print the profiles' main-thread time per task, by stage and by function. */
function report(label: string, profiles: CpuProfile[], perProfile: number): void {
  const stages = new Map<string, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  for (const p of profiles) {
    const s = summarize(p, STAGES);
    busy += s.busyUs;
    for (const [k, v] of s.stages) stages.set(k, (stages.get(k) ?? 0) + v);
    for (const [k, v] of s.functions) functions.set(k, (functions.get(k) ?? 0) + v);
  }
  const n = perProfile * profiles.length;
  const perTask = (us: number) => (us / n).toFixed(3).padStart(7);
  console.log(`\n${label}: main thread busy ${perTask(busy)} µs/task, by stage:`);
  for (const [k, v] of [...stages].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${perTask(v)} µs  ${k}`);
  }
  console.log(`top functions by self time (µs/task):`);
  const top = [...functions].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
  for (const [k, v] of top) console.log(`  ${perTask(v)}  ${k}`);
}

if (values.prof) {
  report("batch (delayMany)", batchProfiles, tasks);
  if (single > 0) report("single (delay() in a loop)", singleProfiles, single);
  session.disconnect();
}
await app.close();
