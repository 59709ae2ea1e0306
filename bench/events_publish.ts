// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/events_publish.ts`: the main thread's CPU time per
 * PUBLISH of one event batch (130 KB, about what a `-E` worker sends for
 * 33 tasks), through ioredis as the Redis broker's other broadcasts go and
 * through the events' own RESP connection (src/broker/resp_connection.ts),
 * in alternated rounds. CPU time of the main thread from `/proc` (100 Hz
 * ticks, hence many publishes a round); Deno's socket I/O runs on that
 * thread too. Options: `--redis URL` (default `redis://127.0.0.1:6379/0`;
 * publishes on a channel nobody reads), `--count N` (3000 a round),
 * `--rounds K` (5).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { parseRedisUrl } from "../src/broker/redis_url.ts";
import { RespConnection } from "../src/broker/resp_connection.ts";

const { values } = parseArgs({
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6379/0" },
    count: { type: "string", default: "3000" },
    rounds: { type: "string", default: "5" },
  },
});
const url = parseRedisUrl(values.redis);
const count = Number(values.count);
const payload = new Uint8Array(130_000).fill(0x41);
const channel = `celeriac-bench-publish-${crypto.randomUUID()}`;
const channelBytes = new TextEncoder().encode(channel);
const io = new Redis({
  host: url.host,
  port: url.port,
  db: url.db,
  username: url.username,
  password: url.password,
  lazyConnect: true,
  enableAutoPipelining: true,
});
await io.connect();
const resp = new RespConnection({ ...url, label: values.redis });
await resp.connect();

/** CPU time of this (the main) thread so far, µs. */
function cpuMicros(): number {
  const f = Deno.readTextFileSync("/proc/thread-self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

async function round(viaResp: boolean): Promise<number> {
  const t0 = cpuMicros();
  for (let i = 0; i < count; i++) {
    const raw = payload.slice(); // each batch is a new buffer, as in the worker
    if (viaResp) await resp.publish(channelBytes, raw);
    else await io.publish(channel, Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
  }
  return (cpuMicros() - t0) / count;
}

await round(false);
await round(true);
const ratios: number[] = [];
for (let r = 1; r <= Number(values.rounds); r++) {
  const a = await round(false);
  const b = await round(true);
  ratios.push(b / a);
  console.log(
    `round ${r}: ioredis ${a.toFixed(1)} µs/publish, RESP connection ${b.toFixed(1)} µs/publish, ` +
      `ratio ${(b / a).toFixed(2)}`,
  );
}
ratios.sort((x, y) => x - y);
console.log(`median ratio ${ratios[Math.floor(ratios.length / 2)].toFixed(2)}`);
io.disconnect();
await resp.close();
