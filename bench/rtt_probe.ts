// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/rtt_probe.ts [N] [ROUNDTRIPS] [V8_FLAGS]`: where a
 * Celeriac worker's round-trip tail comes from. Starts a worker (`-c 2`, the
 * bench's app; broker Redis db 10, results db 11, both flushed), drains N
 * (20000) no-ops (0: none), then times ROUNDTRIPS (1000) sequential
 * `delay()` + `get()` calls after 100 warm-up ones and prints p50/p90/p99/max
 * and the 12 slowest with their start time (ms since the worker was
 * spawned), to line up with the worker's output: the default V8_FLAGS
 * (`--max-semi-space-size=1,--trace-gc`) print each garbage collection with
 * its time since the isolate started (saved to the file in `GC_LOG`, if set).
 *
 * @module
 */
import { Redis } from "ioredis";
import { startBenchWorker, stopTree } from "./proc.ts";
import { app, BENCH_QUEUE, noop } from "./tasks.ts";

const n = Number(Deno.args[0] ?? 20000);
const rtts = Number(Deno.args[1] ?? 1000);
const flags = Deno.args[2] ?? "--max-semi-space-size=1,--trace-gc";
const brokerUrl = "redis://127.0.0.1:6379/10";
const backendUrl = "redis://127.0.0.1:6379/11";
const broker = new Redis(brokerUrl);
const results = new Redis(backendUrl);
await Promise.all([broker.flushdb(), results.flushdb()]);
app.configure({ broker: brokerUrl, backend: backendUrl });
const t0 = performance.now();
const worker = startBenchWorker({
  broker: brokerUrl,
  backend: backendUrl,
  queue: BENCH_QUEUE,
  denoArgs: [`--v8-flags=${flags}`],
});
const child = worker.child;
await worker.ready;
for (let sent = 0; sent < n; sent += 1000) {
  await noop.delayMany(Array.from({ length: Math.min(1000, n - sent) }, () => []));
}
while (await results.dbsize() < n) await new Promise((r) => setTimeout(r, 20));
for (let i = 0; i < 100; i++) await (await noop.delay()).get();
const lat: [number, number][] = [];
for (let i = 0; i < rtts; i++) {
  const s = performance.now();
  await (await noop.delay()).get();
  lat.push([performance.now() - s, s - t0]);
}
const sorted = lat.map((x) => x[0]).sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.ceil(p / 100 * sorted.length) - 1].toFixed(3);
console.log(
  `p50 ${pct(50)} p90 ${pct(90)} p99 ${pct(99)} max ${pct(100)} (load ${Deno.loadavg()[0]})`,
);
const slow = [...lat].sort((a, b) => b[0] - a[0]).slice(0, 12);
console.log("slowest:", slow.map(([l, t]) => `${l.toFixed(1)}ms@${t.toFixed(0)}`).join(" "));
const first = lat[0][1], last = lat[lat.length - 1][1];
console.log(`RTT window ${first.toFixed(0)}..${last.toFixed(0)} ms since spawn`);
await stopTree(child);
await new Promise((r) => setTimeout(r, 300));
const gcLog = Deno.env.get("GC_LOG");
if (gcLog) {
  const gc = worker.output().split("\n").filter((l) => /ms: (Scavenge|Mark|Minor)/.test(l));
  await Deno.writeTextFile(gcLog, gc.join("\n"));
  console.log(`${gc.length} GC lines in ${gcLog}`);
}
await Promise.allSettled([broker.flushdb(), results.flushdb()]);
broker.disconnect();
results.disconnect();
await app.close();
