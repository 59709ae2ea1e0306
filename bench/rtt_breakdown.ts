// deno-lint-ignore-file no-console
/**
 * `[BENCH_REDIS=redis://HOST:PORT] deno run -A bench/rtt_breakdown.ts [ROUNDTRIPS]`: where one sequential
 * round trip (`delay()` then `get()`, the bench's roundtrips workload) spends
 * its time. Starts a worker (`-c 2`, the bench's app; broker Redis db 10,
 * results db 11, both flushed), runs 100 warm-up round trips of
 * `bench.stamp` (a no-op returning the wall-clock time it ran at, in its
 * Web Worker), then ROUNDTRIPS (300) timed ones while a `MONITOR`
 * connection records when the Redis server received each command of the
 * two dbs. Every timestamp is wall-clock milliseconds
 * (`performance.timeOrigin + performance.now()` in each thread, the server's
 * clock for commands), so steps line up across processes and threads.
 * Prints the median of each step, in order:
 *
 * - `publish`: `delay()` called → the server received the client's LPUSH
 * - `to task`: LPUSH → the task started in its Web Worker (the worker's
 *   BLMOVE claim woke, decoding, intake, hand-off to the Web Worker)
 * - `to store`: task start → the server received the result store (outcome
 *   back on the main thread, encoding, settlement)
 * - beside the path, from the LPUSH: `take`, the take script that records
 *   the claimed message (sent once it is on its way; none when the message
 *   is acknowledged before one is sent: counted apart), and `ack`, its
 *   acknowledgement (at intake, the task is not `acksLate`: an `LREM` from
 *   the claim list when no take script was sent for it, else right behind
 *   the take script, `ACK_TAKEN_SCRIPT`, or a ZREM)
 * - `notify`: result store → `get()` resolved in the client (PUBLISH
 *   delivered, decoded)
 * - `total`: `delay()` called → `get()` resolved
 *
 * MONITOR sees every database: on a busy shared server it also slows Redis
 * a little, so compare runs made the same way. It slows this process most:
 * its reader (a plain socket, `tools/redis_monitor.ts`: ioredis's
 * `monitor()` fails with "Command queue state error" when another client's
 * command arrives between MONITOR's `+OK` and its switch to monitoring mode)
 * parses every command the server runs, so the client's own steps
 * (its SUBSCRIBE and GET after the LPUSH's reply, reading the PUBLISH) come
 * late — a SUBSCRIBE was seen after its result's PUBLISH — and `notify`
 * and `total` read longer than without it (total 1.91 against 0.74 ms on a
 * quiet host, 1.38 against 1.08 on a busy one).
 * So ROUNDTRIPS round trips without MONITOR come first, split by the two
 * clocks of the path alone (`to task`: `delay()` called → task start;
 * `back`: task start → `get()` resolved), with their `total`.
 *
 * @module
 */
import { Redis } from "ioredis";
import { RedisMonitor } from "../tools/redis_monitor.ts";
import { startBenchWorker, stopTree } from "./proc.ts";
import { app, BENCH_QUEUE, stamp } from "./tasks.ts";

const rtts = Number(Deno.args[0] ?? 300);
const BROKER_DB = 10;
const BACKEND_DB = 11;
/** The Redis server: `BENCH_REDIS` (a private `redis-server`, say), default the shared one. */
const server = (Deno.env.get("BENCH_REDIS") ?? "redis://127.0.0.1:6379").replace(/\/\d*$/, "");
const brokerUrl = `${server}/${BROKER_DB}`;
const backendUrl = `${server}/${BACKEND_DB}`;
const broker = new Redis(brokerUrl);
const results = new Redis(backendUrl);
await Promise.all([broker.flushdb(), results.flushdb()]);
app.configure({ broker: brokerUrl, backend: backendUrl });
const worker = startBenchWorker({
  broker: brokerUrl,
  backend: backendUrl,
  queue: BENCH_QUEUE,
});
const child = worker.child;
await worker.ready;
const wall = () => performance.timeOrigin + performance.now();
for (let i = 0; i < 100; i++) await (await stamp.delay()).get();

/** A round trip's times (wall-clock ms) and its task id. */
interface Run {
  id: string;
  called: number;
  ran: number;
  got: number;
}
/** A timed round trip: `delay()` called, the task's start (its Web Worker's clock), `get()` resolved. */
async function roundTrip(): Promise<Run> {
  const called = wall();
  const r = await stamp.delay();
  const ran = await r.get() as number;
  return { id: r.id, called, ran, got: wall() };
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const quiet: Run[] = [];
for (let i = 0; i < rtts; i++) quiet.push(await roundTrip());
console.log(`${rtts} round trips without MONITOR (load ${Deno.loadavg()[0]}); median ms per step:`);
const quietSteps: [string, (r: Run) => number][] = [
  ["to task", (r) => r.ran - r.called],
  ["back", (r) => r.got - r.ran],
  ["total", (r) => r.got - r.called],
];
for (const [name, step] of quietSteps) {
  console.log(`  ${name.padEnd(10)} ${median(quiet.map(step)).toFixed(3)}`);
}

/** A command as MONITOR saw it: server time (ms), db, name and arguments. */
interface Seen {
  t: number;
  db: number;
  args: string[];
}
const seen: Seen[] = [];
const monitor = await RedisMonitor.open(brokerUrl);
monitor.on((args, { time, db }) => {
  if (db === BROKER_DB || db === BACKEND_DB) seen.push({ t: time, db, args });
});
const runs: Run[] = [];
for (let i = 0; i < rtts; i++) runs.push(await roundTrip());
await new Promise((r) => setTimeout(r, 200));
await monitor.close();

const cmd = (s: Seen) => s.args[0].toLowerCase();
const after = (from: number, t: number, match: (s: Seen) => boolean) => {
  for (let i = from; i < seen.length; i++) if (seen[i].t >= t && match(seen[i])) return seen[i];
  return undefined;
};
const steps: Record<string, number[]> = {
  publish: [],
  "to task": [],
  "to store": [],
  notify: [],
  total: [],
  take: [],
  ack: [],
};
let unmatched = 0;
for (const run of runs) {
  const lpushAt = seen.findIndex((s) => cmd(s) === "lpush" && s.args[2]?.includes(run.id));
  const lpush = seen[lpushAt];
  const take = lpush &&
    after(lpushAt, lpush.t, (s) => s.db === BROKER_DB && cmd(s) === "evalsha" && s.args.length > 8);
  const store = lpush &&
    after(
      lpushAt,
      lpush.t,
      (s) => s.db === BACKEND_DB && cmd(s) === "evalsha" && s.args[3]?.endsWith(run.id),
    );
  const ack = lpush &&
    after(
      lpushAt,
      lpush.t,
      (s) =>
        s.db === BROKER_DB &&
        (cmd(s) === "zrem" || cmd(s) === "lrem" || (cmd(s) === "evalsha" && s.args[2] === "2" &&
          s.args[4]?.endsWith("unacked") === true)),
    );
  if (!lpush || !store || !ack) {
    unmatched++;
    continue;
  }
  steps.publish.push(lpush.t - run.called);
  steps["to task"].push(run.ran - lpush.t);
  steps["to store"].push(store.t - run.ran);
  steps.notify.push(run.got - store.t);
  steps.total.push(run.got - run.called);
  if (take && take.t < store.t) steps.take.push(take.t - lpush.t);
  steps.ack.push(ack.t - lpush.t);
}
console.log(
  `${runs.length - unmatched} of ${runs.length} round trips matched ` +
    `(load ${Deno.loadavg()[0]}), ${steps.take.length} with a take script before the store; ` +
    "median ms per step:",
);
for (const [name, xs] of Object.entries(steps)) {
  console.log(`  ${name.padEnd(10)} ${median(xs).toFixed(3)}`);
}
await stopTree(child);
await Promise.allSettled([broker.flushdb(), results.flushdb()]);
broker.disconnect();
results.disconnect();
// The app's result subscriber keeps the process alive: exit rather than wait for it.
Deno.exit(0);
