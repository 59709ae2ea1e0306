/**
 * A worker on a single Redis server never loads ioredis (nor the module that
 * opens its connections, redis_ioredis.ts), nor Node's crypto (a script's
 * SHA-1 is computed by sha1.ts) or `@logtape/file` and Node's fs and streams
 * (without `--logfile`), nor the dashboard (without `--dashboard`): neither
 * its main thread nor its Web Workers, through its start-up, a task run and its result stored,
 * revoked ids and remote control (a `ping` broadcast and its reply), and a
 * client doing the same. Read from V8's code log of each isolate (every
 * script it compiled, `--log-source-code` through `CELERIAC_V8_FLAGS` and
 * the client's own `--v8-flags`), which has ioredis' scripts when it is
 * imported: 47 in the worker's main thread before (issue 13's memory target:
 * ioredis and the Node compatibility it loads are ~14 MiB, `node:crypto` ~4
 * and `@logtape/file` ~4 more, the dashboard ~3), nor a CommonJS package
 * (`cluster-key-slot`, which the Redis command guard loaded for Cluster URLs
 * only: Deno's CommonJS loader, `node:module` and Node's `process` with it).
 * Its Web Workers load no LogTape either: their one module that logs, the
 * chord failure path of `celery.chord_unlock`, is imported on first use
 * (LogTape and the ~20 modules of that path were ~4 MiB of a drain's peak RSS),
 * nor `node:path`: the task error report's `permissionDenied` has a module of
 * its own, apart from `sandboxes.ts` (`node:path` brought 36 Node
 * compatibility scripts to each Web Worker: 202 scripts -> 165), nor the beat's
 * loop and schedule store code: `Beat` and `PeriodicTasks` import it when
 * they start or are first called (beat_loop.ts, schedule_editor.ts, and the
 * lease, run-state and owner modules only they use).
 */

import assert from "node:assert/strict";
import { DEFAULT_V8_FLAGS } from "../src/cli/v8_flags.ts";
import { celeriacWorker } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { uniqueQueue } from "./broker_conformance.ts";

/** Every script URL each isolate's V8 log in `dir` names, by log file. */
async function compiledScripts(dir: string): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for await (const e of Deno.readDir(dir)) {
    const urls = new Set<string>();
    for (const line of (await Deno.readTextFile(`${dir}/${e.name}`)).split("\n")) {
      if (line.startsWith("script-source,")) urls.add(line.split(",", 3)[2]);
    }
    out.set(e.name, urls);
  }
  return out;
}

const ioredis = (url: string) => /\/ioredis\/|redis_ioredis\.ts/.test(url);
const nodeHeavy = (url: string) => /^node:(crypto|fs|stream)$|\/@logtape\/file\//.test(url);
const dashboard = (url: string) => url.includes("/src/dashboard/");
const logtape = (url: string) => url.includes("/@logtape/logtape/");
/** Node's path module (`ext:deno_node/path/`, with Node's `assert`, `util` and `buffer`), or sandboxes.ts. */
const nodePath = (url: string) => url === "node:path" || url.includes("/src/worker/sandboxes.ts");
/** The beat's loop and schedule editing, and the modules only they import. */
const beatLoop = (url: string) =>
  /\/src\/beat\/(beat_loop|beat_lease|schedule_editor|run_state|owner)\.ts$/.test(url);
/** A CommonJS package (`cluster-key-slot`, for Cluster URLs) and the loader the first one brings. */
const commonJs = (url: string) => /\/cluster-key-slot\/|^node:module$/.test(url);

/** The client's part: a task and its result, a revoke, a ping; run in a process of its own. */
const CLIENT = `
import { Celery } from "./mod.ts";
const [url, queue] = Deno.args;
const app = new Celery({ broker: url, backend: url, defaultQueue: queue });
const r = await app.sendTask("bench.noop", []);
if (await r.get({ timeout: 20_000 }) !== 1) throw new Error("no result");
await app.control.revoke(crypto.randomUUID());
const pong = await app.control.ping({ timeout: 2 });
if (pong.length !== 1) throw new Error("ping: " + JSON.stringify(pong));
await app.close();
`;

Deno.test({
  name: "redis: a worker and a client on a single server never load ioredis",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("no-ioredis");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const queue = uniqueQueue("no-ioredis");
  const workerLogs = await Deno.makeTempDir({ prefix: "celeriac-v8-worker-" });
  const clientLogs = await Deno.makeTempDir({ prefix: "celeriac-v8-client-" });
  const log = (dir: string) => `--log-code,--log-source-code,--logfile=${dir}/v8.log`;
  const worker = await celeriacWorker(["--app", "bench/tasks.ts", "-c", "2", "-Q", queue], {
    CELERY_BROKER_URL: url,
    CELERY_RESULT_BACKEND: url,
    CELERIAC_V8_FLAGS: `${DEFAULT_V8_FLAGS},${log(workerLogs)}`,
  });
  try {
    const client = await new Deno.Command(Deno.execPath(), {
      args: ["eval", `--v8-flags=${log(clientLogs)}`, CLIENT, url, queue],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(client.code, 0, new TextDecoder().decode(client.stderr));
  } finally {
    await worker.stop();
    await deleteKeys(prefix);
  }
  try {
    const isolates = await compiledScripts(workerLogs);
    // The main thread and two Web Workers.
    assert.equal(isolates.size, 3, worker.output);
    const client = await compiledScripts(clientLogs);
    for (const [name, urls] of [...isolates, ...client]) {
      assert.deepEqual([...urls].filter(ioredis), [], `${name} compiled ioredis`);
      // Nor what a script's SHA-1 or a log file would load (Node's crypto, fs and streams).
      assert.deepEqual([...urls].filter(nodeHeavy), [], `${name} compiled them`);
      // Nor the dashboard's modules and assets, without --dashboard.
      assert.deepEqual([...urls].filter(dashboard), [], `${name} compiled the dashboard`);
      // Nor a CommonJS package, whose loader and Node's process come with it.
      assert.deepEqual([...urls].filter(commonJs), [], `${name} compiled CommonJS`);
    }
    const opensBroker = (urls: Set<string>) =>
      [...urls].some((u) => u.endsWith("/src/broker/resp_client.ts"));
    const withClient = [...isolates.values(), ...client.values()].filter(opensBroker);
    // The log shows what was compiled: Celeriac's own Redis client, in the worker's main thread
    // and the client (a Web Worker opens no broker).
    assert.equal(withClient.length, 2);
    const webWorkers = [...isolates.values()].filter((urls) => !opensBroker(urls));
    assert.equal(webWorkers.length, 2);
    for (const urls of webWorkers) {
      assert.deepEqual([...urls].filter(logtape), [], "a Web Worker compiled LogTape");
      // Nor node:path (sandboxes.ts imports it; the task error report imports permission_denied.ts).
      assert.deepEqual([...urls].filter(nodePath), [], "a Web Worker compiled node:path");
      // Nor the beat's loop: the tasks module imports Beat and PeriodicTasks, never started.
      assert.deepEqual([...urls].filter(beatLoop), [], "a Web Worker compiled the beat's loop");
    }
  } finally {
    await Deno.remove(workerLogs, { recursive: true });
    await Deno.remove(clientLogs, { recursive: true });
  }
});
