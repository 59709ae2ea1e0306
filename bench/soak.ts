// deno-lint-ignore-file no-console
/**
 * Soak workload: a Celeriac worker process under a steady task rate for
 * minutes, its memory sampled every 5 s — RSS of the process tree (from
 * `/proc`) and the V8 heap of each isolate (reported by the app module) —
 * and the slope of each after the warm-up, in MB per minute. RSS is also
 * split into what V8 has reserved for its heaps and the rest (native:
 * Deno, SQLite, buffers), so a rise shows whether it is heap sizing or
 * memory kept elsewhere.
 *
 * ```sh
 * deno task soak --minutes 10 --rate 2000                 # Redis, the default command (-A)
 * deno task soak --broker kv --minutes 3 --rate 1000
 * deno task soak --broker amqp --v8-flags --max-semi-space-size=1
 * CELERIAC_V8_FLAGS= deno task soak --minutes 10          # V8's default heap sizes
 * ```
 *
 * The worker runs as `deno run -A worker.ts ...`, so it applies its default
 * V8 flags itself (see `src/cli/v8_flags.ts`) unless `--v8-flags` or
 * `CELERIAC_V8_FLAGS` (inherited) says otherwise.
 *
 * Not a test: it asserts nothing, it prints the curve and the slopes.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { Celery } from "../mod.ts";
import { processTree, stopTree } from "./proc.ts";
import { createVhost } from "./rabbitmq.ts";
import type { HeapSample } from "./soak_tasks.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "2000" },
    broker: { type: "string", default: "redis" },
    warmup: { type: "string", default: "2" },
    "sample-seconds": { type: "string", default: "5" },
    "v8-flags": { type: "string", default: "" },
    concurrency: { type: "string", default: "2" },
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
  },
});

const minutes = Number(values.minutes);
const rate = Number(values.rate);
const warmup = Number(values.warmup);
const sampleMs = Number(values["sample-seconds"]) * 1000;
const broker = values.broker;

function rssKiB(pids: number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
      sum += m ? Number(m[1]) : 0;
    } catch {
      // exited
    }
  }
  return sum;
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return num / den;
}

async function transport(): Promise<{ url: string; backend: string; cleanup(): Promise<void> }> {
  if (broker === "redis") {
    // A key prefix of its own: the soak never touches other data (nor the bench's db 14/15).
    const prefix = `celeriac-soak-${crypto.randomUUID().slice(0, 8)}:`;
    const url = `${values.redis}?global_keyprefix=${encodeURIComponent(prefix)}`;
    const cleanup = async () => {
      const r = new Redis(values.redis);
      let cursor = "0";
      do {
        const [next, keys] = await r.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 5000);
        cursor = next;
        if (keys.length) await r.unlink(...keys);
      } while (cursor !== "0");
      r.disconnect();
    };
    return { url, backend: url, cleanup };
  }
  if (broker === "kv") {
    const dir = await Deno.makeTempDir({ prefix: "celeriac-soak-" });
    const url = `kv://${dir}/soak.sqlite`;
    return { url, backend: url, cleanup: () => Deno.remove(dir, { recursive: true }) };
  }
  if (broker === "amqp") {
    const vhost = await createVhost("soak");
    return { url: vhost.url, backend: "rpc://", cleanup: vhost.remove };
  }
  throw new TypeError(`--broker must be redis, amqp or kv, got ${broker}`);
}

const t = await transport();
const memoryFile = await Deno.makeTempFile({ prefix: "celeriac-soak-heap-" });
const env = {
  CELERY_BROKER_URL: t.url,
  CELERY_RESULT_BACKEND: t.backend,
  SOAK_MEMORY_FILE: memoryFile,
  SOAK_SAMPLE_MS: String(sampleMs),
};
const args = [
  "run",
  ...(values["v8-flags"] ? [`--v8-flags=${values["v8-flags"]}`] : []),
  "-A",
  "worker.ts",
  "--app",
  "bench/soak_tasks.ts",
  "-c",
  values.concurrency,
  "-Q",
  "soak",
  "--loglevel",
  "WARNING",
];
console.log(`soak: ${broker}, ${rate} tasks/s for ${minutes} min, deno ${args.join(" ")}`);
const worker = new Deno.Command(Deno.execPath(), {
  args,
  cwd: ROOT,
  env,
  stdout: "inherit",
  stderr: "inherit",
}).spawn();

// Ctrl-C or a timeout: stop the worker and clean up before exiting.
let stopping = false;
const abort = async () => {
  if (stopping) return;
  stopping = true;
  await stopTree(worker).catch(() => {});
  await t.cleanup().catch(() => {});
  await Deno.remove(memoryFile).catch(() => {});
  Deno.exit(130);
};
for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, abort);

const client = new Celery({ broker: t.url, backend: t.backend, defaultQueue: "soak" });
const noop = client.remoteTask("bench.noop");
const start = Date.now();
const end = start + minutes * 60_000;
let sent = 0;
const ids: string[] = [];

let due = 0;

/**
 * Open loop at `rate`, but at most one second's worth of calls in flight:
 * a broker that cannot keep up shows as `behind` growing, not as one ever
 * larger burst whose calls seem never to settle.
 */
async function produce(): Promise<void> {
  while (Date.now() < end) {
    due = Math.floor(((Date.now() - start) / 1000) * rate);
    const batch: Promise<unknown>[] = [];
    while (sent < due && batch.length < rate) {
      batch.push(
        noop.delay().then((r) => {
          if (ids.length < 1000 || Math.random() < 0.001) ids.push(r.id);
        }),
      );
      sent++;
    }
    await Promise.all(batch);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rows: {
  min: number;
  rssMiB: number;
  heapMiB: number;
  reservedMiB: number;
  backlog: number;
}[] = [];
/**
 * The latest sample of every live isolate at `time`, summed: `used` is the
 * V8 heap in use plus external memory (it swings with every collection),
 * `reserved` the heap V8 has reserved (`heapTotal`, young and old
 * generations), which grows as V8 enlarges its young generation under a
 * steady allocation rate: RSS growth that `reserved` accounts for is heap
 * sizing, not objects kept alive.
 */
function heapAt(time: number): { used: number; reserved: number } {
  const text = Deno.readTextFileSync(memoryFile);
  const latest = new Map<string, HeapSample>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    const s = JSON.parse(line) as HeapSample;
    if (s.t <= time) latest.set(s.isolate, s);
  }
  let used = 0;
  let reserved = 0;
  for (const s of latest.values()) {
    if (time - s.t >= 2 * sampleMs) continue;
    used += s.heapUsed + s.external;
    reserved += s.heapTotal;
  }
  return { used, reserved };
}

const sampler = setInterval(async () => {
  const now = Date.now();
  const rss = rssKiB(processTree(worker.pid)) / 1024;
  const { used, reserved } = heapAt(now);
  const heap = used / 1048576;
  const reservedMiB = reserved / 1048576;
  const backlog = await client.queueDepth("soak").catch(() => -1);
  const row = { min: (now - start) / 60_000, rssMiB: rss, heapMiB: heap, reservedMiB, backlog };
  rows.push(row);
  console.log(
    `${row.min.toFixed(2).padStart(6)} min  RSS ${rss.toFixed(1).padStart(7)} MiB  ` +
      `heap ${heap.toFixed(1).padStart(6)} MiB  reserved ${
        reservedMiB.toFixed(1).padStart(6)
      } MiB  ` +
      `backlog ${backlog}  sent ${sent}  ` +
      `behind ${Math.max(0, due - sent)}`,
  );
}, sampleMs);

try {
  await produce();
} finally {
  clearInterval(sampler);
}
const after = rows.filter((r) => r.min >= warmup);
const mb = 1.048576; // MiB -> MB
const rssSlope = slope(after.map((r) => [r.min, r.rssMiB * mb]));
const heapSlope = slope(after.map((r) => [r.min, r.heapMiB * mb]));
const reservedSlope = slope(after.map((r) => [r.min, r.reservedMiB * mb]));
const outsideSlope = slope(after.map((r) => [r.min, (r.rssMiB - r.reservedMiB) * mb]));
const checked = await Promise.all(
  ids.slice(-200).map((id) =>
    client.asyncResult(id).get({ timeout: 30_000 }).then(() => true, () => false)
  ),
);
console.log(
  `soak: ${sent} tasks sent; after minute ${warmup}: RSS slope ${rssSlope.toFixed(2)} MB/min, ` +
    `heap slope ${heapSlope.toFixed(2)} MB/min, V8 reserved ${reservedSlope.toFixed(2)} MB/min, ` +
    `RSS outside the V8 heaps ${outsideSlope.toFixed(2)} MB/min (${after.length} samples); ` +
    `last 200 sampled results: ${checked.filter(Boolean).length} ok`,
);
await stopTree(worker);
await client.close();
await t.cleanup();
await Deno.remove(memoryFile);
