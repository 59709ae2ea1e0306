// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/redis_chunk_size.ts [PORT]`: the cost of LPUSHing
 * 100,000 values of 600 bytes in commands of 100, 1,000, 10,000 and 50,000
 * values (ioredis, auto-pipelined, as publishMany through Sentinel or a
 * Cluster sends them; src/broker/chunks.ts picks 1,000), in 7 alternated
 * rounds: the total time, and the longest command's time inside Redis (from
 * SLOWLOG, which shows how long other clients wait behind it). Run it
 * against a private `redis-server` on PORT (default 26999): it changes the
 * slowlog settings and uses the key `L`.
 *
 * @module
 */

import { Redis } from "ioredis";

const port = Number(Deno.args[0] ?? 26999);
const sizes = [100, 1000, 10_000, 50_000];
const values = Array.from({ length: 100_000 }, (_, i) => `m${i}-` + "x".repeat(600));
const push = new Redis({ port, enableAutoPipelining: true });
const admin = new Redis({ port });
await admin.config("SET", "slowlog-log-slower-than", "0");
await admin.config("SET", "slowlog-max-len", "2000");
const runs = new Map(sizes.map((s) => [s, { ms: [] as number[], held: [] as number[] }]));
for (let round = 0; round < 7; round++) {
  for (const size of round % 2 ? [...sizes].reverse() : sizes) {
    await push.del("L");
    await admin.slowlog("RESET");
    const t0 = performance.now();
    const commands = [];
    for (let i = 0; i < values.length; i += size) {
      commands.push(push.lpush("L", ...values.slice(i, i + size)));
    }
    await Promise.all(commands);
    const ms = performance.now() - t0;
    if ((await push.llen("L")) !== values.length) throw new Error("values lost");
    const log = await admin.call("SLOWLOG", "GET", "2000") as [number, number, number, string[]][];
    let held = 0;
    for (const e of log) if (String(e[3][0]).toLowerCase() === "lpush") held = Math.max(held, e[2]);
    runs.get(size)!.ms.push(ms);
    runs.get(size)!.held.push(held / 1000);
  }
}
await push.del("L");
const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)];
const range = (x: number[]) => `${Math.min(...x).toFixed(1)}-${Math.max(...x).toFixed(1)}`;
for (const [size, r] of runs) {
  console.log(
    `${size} per command: ${median(r.ms).toFixed(0)} ms in all (${range(r.ms)}), longest command ` +
      `${median(r.held).toFixed(1)} ms in Redis (${range(r.held)})`,
  );
}
push.disconnect();
admin.disconnect();
