// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/loaded_scripts.ts`: which scripts each isolate of a
 * Celeriac worker compiled — its main thread and each Web Worker — while it
 * drained `--tasks` (500) no-ops (Redis db 12, results db 13, both flushed:
 * run it under the heavy lock). The bench's worker (`-c 2`, the default
 * command) runs with its default V8 flags plus V8's code log
 * (`--log-code,--log-source-code`, one file per isolate); the script prints,
 * per isolate, how many scripts it compiled: the app's and Celeriac's own
 * files, Node compatibility (`ext:deno_node`, `node:`), other runtime
 * (`ext:`), and npm packages by name. On a single Redis server no isolate
 * should compile `ioredis`: `--expect-no ioredis` (repeatable) makes the
 * script exit with status 1 when one does. `--list` also prints, per isolate,
 * the URL of every script it compiled but the runtime's (`ext:` other than
 * Node compatibility), one a line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_V8_FLAGS } from "../src/cli/v8_flags.ts";
import { startBenchWorker, stopTree } from "./proc.ts";
import { openProbeDbs } from "./probe_dbs.ts";
import { BENCH_QUEUE, noop } from "./tasks.ts";

/** Scripts of one isolate by origin, and its npm packages by name. */
interface Loaded {
  file: string;
  total: number;
  urls: string[];
  origins: Record<string, number>;
  npm: Record<string, number>;
}

/** What a `script-source` line's URL is: own files, Node compatibility, runtime, npm. */
function origin(url: string): { kind: string; npm?: string } {
  const npm = /registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (npm) return { kind: "npm", npm: npm[1] };
  if (url.startsWith("ext:deno_node") || url.startsWith("node:")) return { kind: "node compat" };
  if (url.startsWith("ext:")) return { kind: "runtime" };
  if (url.startsWith("file:")) return { kind: "files" };
  return { kind: "other" };
}

/** Read one isolate's V8 log: every compiled script's URL (`script-source,id,url,...`). */
function readLog(path: string): Loaded {
  const loaded: Loaded = { file: path, total: 0, urls: [], origins: {}, npm: {} };
  const seen = new Set<string>();
  for (const line of Deno.readTextFileSync(path).split("\n")) {
    if (!line.startsWith("script-source,")) continue;
    const url = line.split(",", 3)[2];
    if (seen.has(url)) continue;
    seen.add(url);
    loaded.total++;
    const o = origin(url);
    if (o.kind !== "runtime") loaded.urls.push(url);
    loaded.origins[o.kind] = (loaded.origins[o.kind] ?? 0) + 1;
    if (o.npm) loaded.npm[o.npm] = (loaded.npm[o.npm] ?? 0) + 1;
  }
  return loaded;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      tasks: { type: "string", default: "500" },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
      "expect-no": { type: "string", multiple: true, default: [] },
      list: { type: "boolean", default: false },
    },
  });
  const n = Number(values.tasks);
  const dir = await Deno.makeTempDir({ prefix: "celeriac-loaded-" });
  const dbs = await openProbeDbs(values.redis);
  const worker = startBenchWorker({
    broker: dbs.brokerUrl,
    backend: dbs.backendUrl,
    queue: BENCH_QUEUE,
    env: {
      CELERIAC_V8_FLAGS: `${DEFAULT_V8_FLAGS},--log-code,--log-source-code,--logfile=${dir}/v8.log`,
    },
  });
  try {
    await worker.ready;
    for (let sent = 0; sent < n; sent += 1000) {
      await noop.delayMany(Array.from({ length: Math.min(1000, n - sent) }, () => []));
    }
    while (await dbs.results.dbsize() < n) await new Promise((r) => setTimeout(r, 50));
  } finally {
    await stopTree(worker.child);
    await dbs.close();
  }
  const isolates = [...Deno.readDirSync(dir)].map((e) => readLog(`${dir}/${e.name}`))
    .sort((a, b) => b.total - a.total);
  let unexpected = 0;
  isolates.forEach((l, i) => {
    const name = i === 0 ? "main thread" : `Web Worker ${i}`;
    const origins = Object.entries(l.origins).map(([k, v]) => `${k} ${v}`).join(", ");
    const npm = Object.entries(l.npm).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
    console.log(`${name}: ${l.total} scripts (${origins}); npm: ${npm}`);
    if (values.list) { for (const url of l.urls) console.log(`  ${url}`); }
    for (const pkg of values["expect-no"]) {
      if (l.npm[pkg]) {
        console.log(`  ${pkg} compiled on the ${name}`);
        unexpected++;
      }
    }
  });
  await Deno.remove(dir, { recursive: true });
  if (unexpected > 0) Deno.exit(1);
}
