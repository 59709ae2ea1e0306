// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/take_script_cost.ts [PORT] [--alt FILE] [--rounds N]`:
 * the Redis server's time per message of the take script (TAKE_SCRIPT in
 * src/broker/redis_scripts.ts), the Lua that records each taken message in
 * `unacked` / `unacked_index`. 20,000 `bench.noop` envelopes (the bench's
 * client, `delayMany`) are queued once; each round takes them all in takes
 * of 100, emptying `unacked` and `unacked_index` after each (as the
 * worker's acknowledgements keep them small), and reads the script's time
 * from `INFO commandstats` (`evalsha` usec, the commands it calls
 * included). With `--alt FILE` (a Lua file: an edited copy of the script) the two
 * alternate, round by round: compare a change to the script before
 * measuring it in the drain. Run it against a private `redis-server` on
 * PORT (default 26998; it resets the server's statistics and uses db 3).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { TAKE_SCRIPT } from "../src/broker/redis_scripts.ts";
import { app, noop } from "./tasks.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { alt: { type: "string" }, rounds: { type: "string", default: "6" } },
  allowPositionals: true,
});
const port = Number(positionals[0] ?? 26998);
const rounds = Number(values.rounds);
const N = 20_000;
const url = `redis://127.0.0.1:${port}/3`;
const r = new Redis(url);
await r.del("bench", "q", "unacked", "unacked_index", "parked", "rec");
app.configure({ broker: url, backend: `redis://127.0.0.1:${port}/4` });
for (let sent = 0; sent < N; sent += 1000) {
  await noop.delayMany(Array.from({ length: 1000 }, () => []));
}
await app.close();
const queued = await r.dumpBuffer("bench");
await r.del("bench");

const scripts: [string, string][] = [["take script", TAKE_SCRIPT]];
if (values.alt) scripts.push([values.alt, await Deno.readTextFile(values.alt)]);

async function evalshaUsec(): Promise<number> {
  const m = (await r.info("commandstats")).match(/cmdstat_evalsha:calls=\d+,usec=(\d+)/);
  return m ? Number(m[1]) : 0;
}

const perMessage = new Map(scripts.map(([name]) => [name, [] as number[]]));
for (let round = 0; round < rounds; round++) {
  for (const [name, lua] of round % 2 ? [...scripts].reverse() : scripts) {
    const sha = await r.script("LOAD", lua) as string;
    await r.del("q", "unacked", "unacked_index", "parked", "rec");
    await r.restore("q", 0, queued);
    await r.config("RESETSTAT");
    let taken = 0;
    for (let seq = 1;; seq++) {
      const keys = ["q", "unacked_index", "unacked", "parked", "rec"];
      const out = await r.evalsha(sha, keys.length, ...keys, "100", String(seq)) as unknown[];
      if (out.length === 0) break;
      taken += out.length / 3;
      await r.del("unacked", "unacked_index");
    }
    if (taken !== N) throw new Error(`${name} took ${taken} of ${N} messages`);
    perMessage.get(name)!.push(await evalshaUsec() / N);
  }
}
await r.del("q", "unacked", "unacked_index", "parked", "rec");
r.disconnect();
const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)];
for (const [name, us] of perMessage) {
  console.log(
    `${name}: median ${median(us).toFixed(2)} µs per message in Redis (rounds ${
      us.map((x) => x.toFixed(2)).join(" ")
    })`,
  );
}
