// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/kv_fanout_cpu.ts`: the CPU that watching task events
 * costs on a Deno KV file. A worker of this checkout with `-E` (`-c 2`)
 * runs `bench.noop` at `--rate` tasks per second (50); on the same file a
 * dashboard (`worker.ts dashboard --read-only`) and a bare subscriber of the
 * `celeryev` exchange (it only counts what it gets) run, from this checkout
 * and, with `--compare DIR` (another checkout, e.g. made with `git archive`
 * of main), from that one too, side by side under the same load. After
 * `--warmup` seconds (65: broadcasts are kept 60 s, so the exchange holds
 * what it holds in a steady state) each watcher's CPU time (user + system,
 * all threads, from `/proc`) is read over `--measure` seconds (30) and
 * printed as a share of one CPU, with the events the subscribers got.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Celery } from "../mod.ts";
import { ROOT_DIR } from "./common.ts";
import { stopTree, threadCpuNs } from "./proc.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rate: { type: "string", default: "50" },
    warmup: { type: "string", default: "65" },
    measure: { type: "string", default: "30" },
    compare: { type: "string" },
  },
});
const rate = Number(values.rate);
const warmupMs = Number(values.warmup) * 1000;
const measureMs = Number(values.measure) * 1000;

const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-fanout-cpu-" });
const url = `kv://${dir}/bench.sqlite`;
const env = { CELERY_BROKER_URL: url, CELERY_RESULT_BACKEND: url };
const children: Deno.ChildProcess[] = [];

function spawn(args: string[], cwd: string): Deno.ChildProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  children.push(child);
  return child;
}

/** A dashboard and a bare subscriber of `checkout`; the subscriber writes its count to a file. */
async function watchers(label: string, checkout: string, port: number) {
  const countFile = `${dir}/${label}.count`;
  const script = `${dir}/${label}_subscriber.ts`;
  await Deno.writeTextFile(
    script,
    `import { openKvBroker } from ${JSON.stringify(`${checkout}/src/broker/kv.ts`)};
const broker = await openKvBroker(Deno.args[0]);
let n = 0;
await broker.subscribe("celeryev", () => { n++; }, { signal: new AbortController().signal });
setInterval(() => Deno.writeTextFileSync(Deno.args[1], String(n)), 500);
`,
  );
  const dashboard = spawn([
    "run",
    "-A",
    "worker.ts",
    "dashboard",
    "--app",
    "bench/tasks.ts",
    "--port",
    String(port),
    "--read-only",
    "--loglevel",
    "WARNING",
  ], checkout);
  const subscriber = spawn([
    "run",
    "-A",
    "--config",
    `${checkout}/deno.json`,
    script,
    url,
    countFile,
  ], checkout);
  const count = () => Number(Deno.readTextFileSync(countFile) || 0);
  return { label, dashboard, subscriber, count };
}

function cpuNs(pid: number): number {
  let sum = 0;
  for (const ns of threadCpuNs(pid).values()) sum += ns;
  return sum;
}

const worker = spawn([
  "run",
  "-A",
  "worker.ts",
  "--app",
  "bench/soak_tasks.ts",
  "-c",
  "2",
  "-Q",
  "soak",
  "-E",
  "--loglevel",
  "WARNING",
], ROOT_DIR);
const sides = [await watchers("this", ROOT_DIR, 5610)];
if (values.compare) sides.push(await watchers("compare", values.compare, 5611));

const client = new Celery({ broker: url, backend: url, defaultQueue: "soak" });
const noop = client.remoteTask("bench.noop");
const start = Date.now();
const end = start + warmupMs + measureMs;
let sent = 0;
const producing = (async () => {
  while (Date.now() < end) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    const batch: Promise<unknown>[] = [];
    for (; sent < due; sent++) batch.push(noop.delay());
    await Promise.all(batch);
    await new Promise((r) => setTimeout(r, 20));
  }
})();

await new Promise((r) => setTimeout(r, warmupMs));
const before = sides.map((s) => ({
  dashboard: cpuNs(s.dashboard.pid),
  subscriber: cpuNs(s.subscriber.pid),
  events: s.count(),
}));
const workerBefore = cpuNs(worker.pid);
const t0 = performance.now();
await new Promise((r) => setTimeout(r, measureMs));
const seconds = (performance.now() - t0) / 1000;
const share = (ns: number) => `${(ns / 1e9 / seconds * 100).toFixed(1)} %`;
console.log(
  `${rate} tasks/s, -E worker on ${url}; CPU over ${seconds.toFixed(1)} s after ${
    warmupMs / 1000
  } s:`,
);
for (const [i, s] of sides.entries()) {
  console.log(
    `${s.label}: dashboard ${share(cpuNs(s.dashboard.pid) - before[i].dashboard)}, subscriber ${
      share(cpuNs(s.subscriber.pid) - before[i].subscriber)
    } (${s.count() - before[i].events} events)`,
  );
}
console.log(`worker (this checkout): ${share(cpuNs(worker.pid) - workerBefore)}`);
await producing;
await client.close();
for (const child of children.toReversed()) await stopTree(child).catch(() => {});
await Deno.remove(dir, { recursive: true });
