// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/store_script_cost.ts [PORT] [--alt FILE] [--rounds N] [--batch N]`:
 * the Redis server's time per result of the result store's script
 * (STORE_SCRIPT in src/backend/redis.ts: SET NX EX and PUBLISH of each
 * meta), as the worker calls it in a drain: 20,000 SUCCESS metas of
 * `bench.noop` (result `1`) stored `--batch` (64, about what one Web
 * Worker's outcome batch holds in drain A) per EVALSHA, read from
 * `INFO commandstats` (`evalsha` usec, the commands it calls included).
 * Beside it, the same SETs and PUBLISHes sent as plain pipelined commands
 * (no script: not what the worker may do, it would publish a meta it did
 * not store; the floor a script is compared with). With `--alt FILE` (a Lua
 * file: an edited copy of the script, same KEYS and ARGV) it alternates
 * too, round by round. Run it against a private `redis-server` on PORT
 * (default 26997; it resets the server's statistics and flushes its db 3).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { STORE_SCRIPT } from "../src/backend/redis.ts";
import { encodeResultMetaWithJson } from "../src/protocol/result_meta.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    alt: { type: "string" },
    rounds: { type: "string", default: "6" },
    batch: { type: "string", default: "64" },
  },
  allowPositionals: true,
});
const port = Number(positionals[0] ?? 26997);
const rounds = Number(values.rounds);
const batch = Number(values.batch);
const N = 20_000;
const r = new Redis(`redis://127.0.0.1:${port}/3`);
const TTL = "86400";

const keys: string[] = [];
const metas: string[] = [];
for (let i = 0; i < N; i++) {
  const taskId = crypto.randomUUID();
  keys.push(`celery-task-meta-${taskId}`);
  metas.push(encodeResultMetaWithJson(
    { taskId, status: "SUCCESS", result: null, dateDone: new Date() },
    "1",
  ));
}

type Side = (from: number, to: number) => Promise<unknown>;
const scripted = (sha: string): Side => (from, to) =>
  r.evalsha(sha, to - from, ...keys.slice(from, to), TTL, ...metas.slice(from, to));
const plain: Side = (from, to) => {
  const p = r.pipeline();
  for (let i = from; i < to; i++) {
    p.set(keys[i], metas[i], "EX", TTL, "NX").publish(keys[i], metas[i]);
  }
  return p.exec();
};

const sides: [string, Side][] = [[
  "store script",
  scripted(await r.script("LOAD", STORE_SCRIPT) as string),
]];
if (values.alt) {
  const lua = await Deno.readTextFile(values.alt);
  sides.push([values.alt, scripted(await r.script("LOAD", lua) as string)]);
}
sides.push(["plain SET NX EX + PUBLISH pipeline (floor)", plain]);

async function commandUsec(): Promise<number> {
  const stats = await r.info("commandstats");
  let sum = 0;
  for (const name of ["evalsha", "set", "publish"]) {
    // Inner commands of a script are counted in evalsha's usec too: only top-level ones summed.
    if (name !== "evalsha" && /cmdstat_evalsha:calls=[1-9]/.test(stats)) continue;
    const m = stats.match(new RegExp(`cmdstat_${name}:calls=\\d+,usec=(\\d+)`));
    if (m) sum += Number(m[1]);
  }
  return sum;
}

async function serverCpuUs(): Promise<number> {
  const cpu = await r.info("cpu");
  const user = Number(cpu.match(/used_cpu_user:([\d.]+)/)![1]);
  const sys = Number(cpu.match(/used_cpu_sys:([\d.]+)/)![1]);
  return (user + sys) * 1e6;
}

const perResult = new Map(sides.map(([name]) => [name, [] as number[]]));
const cpuPerResult = new Map(sides.map(([name]) => [name, [] as number[]]));
for (let round = 0; round < rounds; round++) {
  for (const [name, side] of round % 2 ? [...sides].reverse() : sides) {
    await r.flushdb();
    await r.config("RESETSTAT");
    const cpu0 = await serverCpuUs();
    for (let from = 0; from < N; from += batch) await side(from, Math.min(N, from + batch));
    const cpu1 = await serverCpuUs();
    if (await r.dbsize() !== N) throw new Error(`${name} stored ${await r.dbsize()} of ${N}`);
    perResult.get(name)!.push(await commandUsec() / N);
    cpuPerResult.get(name)!.push((cpu1 - cpu0) / N);
  }
}
await r.flushdb();
r.disconnect();
const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)];
const list = (x: number[]) => x.map((v) => v.toFixed(2)).join(" ");
for (const [name, us] of perResult) {
  const cpu = cpuPerResult.get(name)!;
  console.log(
    `${name}: median ${median(us).toFixed(2)} µs per result in commands, ${
      median(cpu).toFixed(2)
    } µs of server CPU (rounds ${list(us)} / ${list(cpu)})`,
  );
}
