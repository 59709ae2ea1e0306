// deno-lint-ignore-file no-console
/**
 * The Redis workload: broker in db 14, Redis result backend in db 15, both
 * FLUSHDB'd before each side and at the end. Completion = `DBSIZE` of db 15
 * (nothing but result metas) reaching N.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import {
  cleanups,
  ENQUEUE_BATCH,
  latencyStats,
  type Options,
  peerClient,
  pythonClient,
  type Side,
  startWorker,
  WARMUP,
} from "./common.ts";
import { stopTree } from "./proc.ts";
import { celeriacTripper, interleaveRoundTrips, p50Ratio, rawTripper } from "./rtt_pair.ts";
import { app, BENCH_QUEUE, noop, spin } from "./tasks.ts";
import { runBroker, type SideReport } from "./workloads.ts";

/** Redis database of the broker. */
export const BROKER_DB = 14;
/** Redis database of the results. */
export const BACKEND_DB = 15;

/**
 * The server URL with its database replaced by `db`.
 *
 * @example
 * ```ts ignore
 * dbUrl("redis://127.0.0.1:6379", 15); // "redis://127.0.0.1:6379/15"
 * ```
 */
export function dbUrl(server: string, db: number): string {
  const url = new URL(server);
  url.pathname = `/${db}`;
  return url.href;
}

/**
 * The options of a Redis workload run on its own
 * (`deno run -A bench/<file>.ts [--<flag> N] [--only SIDE] [--redis URL]`):
 * every other workload off.
 *
 * @example
 * ```ts ignore
 * const { opts, n } = standaloneOptions(Deno.args, "chord", 1000);
 * ```
 *
 * @param args the command line
 * @param flag the workload's size flag
 * @param fallback its size when the flag is absent
 * @returns the options and the size
 */
export function standaloneOptions(
  args: string[],
  flag: string,
  fallback: number,
): { opts: Options; n: number } {
  const { values } = parseArgs({
    args,
    options: { [flag]: { type: "string" }, only: { type: "string" }, redis: { type: "string" } },
  });
  const size = values[flag];
  return {
    n: typeof size === "string" ? Number(size) : fallback,
    opts: {
      cpuTasks: 0,
      enqueueTasks: 0,
      tasks: 0,
      roundtrips: 0,
      only: (values.only as Side | undefined) ?? null,
      broker: "redis",
      prefetch: undefined,
      v8Flags: "",
      taskEvents: false,
      redis: typeof values.redis === "string" ? values.redis : "redis://127.0.0.1:6379",
      amqp: "",
    },
  };
}

/** The bench's two Redis databases, open; disposing flushes them and closes everything. */
export interface BenchDatabases extends AsyncDisposable {
  /** Environment for the peers and Python clients: broker and result URLs. */
  readonly env: Record<string, string>;
  /** A client on the broker database. */
  readonly broker: Redis;
  /** A client on the result database. */
  readonly results: Redis;
  /** FLUSHDB both (errors ignored). */
  flush(): Promise<unknown>;
}

/**
 * Open the bench's Redis databases on `opts.redis`, point the Celeriac bench
 * app at them and register their flush as an interrupt cleanup; disposing
 * flushes them, unregisters the cleanup, disconnects and closes the app.
 *
 * @example
 * ```ts ignore
 * await using dbs = benchDatabases(opts);
 * await dbs.flush();
 * ```
 */
export function benchDatabases(opts: Options): BenchDatabases {
  const brokerUrl = dbUrl(opts.redis, BROKER_DB);
  const backendUrl = dbUrl(opts.redis, BACKEND_DB);
  app.configure({ broker: brokerUrl, backend: backendUrl });
  const broker = new Redis(brokerUrl);
  const results = new Redis(backendUrl);
  const flush = () => Promise.allSettled([broker.flushdb(), results.flushdb()]);
  cleanups.add(flush);
  return {
    env: {
      CELERY_BROKER_URL: brokerUrl,
      CELERY_RESULT_BACKEND: backendUrl,
      BENCH_BROKER_URL: brokerUrl,
      BENCH_BACKEND_DB: String(BACKEND_DB),
    },
    broker,
    results,
    flush,
    async [Symbol.asyncDispose]() {
      await flush();
      cleanups.delete(flush);
      broker.disconnect();
      results.disconnect();
      await app.close();
    },
  };
}

/**
 * Count stored metas with status SUCCESS and result 1.
 *
 * @example
 * ```ts ignore
 * const ok = await countSuccesses(new Redis("redis://127.0.0.1:6379/15"));
 * ```
 */
export async function countSuccesses(results: Redis): Promise<number> {
  let cursor = "0";
  let ok = 0;
  do {
    const [next, keys] = await results.scan(cursor, "MATCH", "celery-task-meta-*", "COUNT", 2000);
    cursor = next;
    if (keys.length === 0) continue;
    for (const raw of await results.mget(...keys)) {
      const meta = raw ? JSON.parse(raw) : null;
      if (meta?.status === "SUCCESS" && meta.result === 1) ok++;
    }
  } while (cursor !== "0");
  return ok;
}

/** BullMQ's keys for the bench queue. */
const BULL_WAIT = `bull:${BENCH_QUEUE}:wait`;
const BULL_DONE = `bull:${BENCH_QUEUE}:completed`;

/**
 * Run every side (or `--only` one) on Redis: Celeriac, Celery, BullMQ and
 * the raw ioredis ceiling.
 *
 * @example
 * ```ts ignore
 * const { celeriac, bullmq } = await runRedis(opts);
 * ```
 *
 * @param opts the bench's options
 * @returns the figures of each side that ran
 */
export async function runRedis(opts: Options): Promise<Partial<Record<Side, SideReport>>> {
  await using dbs = benchDatabases(opts);
  const { env, broker, results, flush } = dbs;
  const others = (await broker.client("LIST") as string).split("\n")
    .filter((l) => / db=(14|15) /.test(l)).length - 2;
  console.log(
    `Redis ${opts.redis}: db ${BROKER_DB} = broker, db ${BACKEND_DB} = results; both are FLUSHDB'd ` +
      `before each run and after the bench${
        others > 0 ? ` (WARNING: ${others} other client(s) use them)` : ""
      }.`,
  );
  const call = async () => await (await noop.delay()).get({ timeout: 30_000 });
  const out = await runBroker("redis", opts, {
    env,
    reset: async () => void await flush(),
    enqueue: async (client, n, spinMs) => {
      if (client === "celery") {
        const args = spinMs ? ["spin", String(n), String(spinMs)] : ["enqueue", String(n)];
        return ((await pythonClient(args, env)) as { seconds: number }).seconds;
      }
      if (client !== "celeriac") {
        const args = spinMs ? ["spin", String(n), String(spinMs)] : ["enqueue", String(n)];
        return ((await peerClient(client, args, env)) as { seconds: number }).seconds;
      }
      const start = performance.now();
      for (let sent = 0; sent < n; sent += ENQUEUE_BATCH) {
        const size = Math.min(ENQUEUE_BATCH, n - sent);
        if (spinMs) await spin.delayMany(Array.from({ length: size }, () => [spinMs]));
        else await noop.delayMany(Array.from({ length: size }, () => []));
      }
      return (performance.now() - start) / 1000;
    },
    enqueueSingle: async (client, n) => {
      if (client === "celery") {
        return ((await pythonClient(["enqueue", String(n)], env)) as { seconds: number }).seconds;
      }
      if (client !== "celeriac") {
        const out = await peerClient(client, ["enqueue-single", String(n)], env);
        return (out as { seconds: number }).seconds;
      }
      const start = performance.now();
      for (let i = 0; i < n; i++) await noop.delay();
      return (performance.now() - start) / 1000;
    },
    depth: (side) => broker.llen(side === "bullmq" ? BULL_WAIT : BENCH_QUEUE),
    results: (side) => side === "bullmq" ? broker.zcard(BULL_DONE) : results.dbsize(),
    verify: async (side) => {
      const ok = side === "bullmq" ? await broker.zcard(BULL_DONE) : await countSuccesses(results);
      await flush();
      return ok;
    },
    call,
    interleavedB: INTERLEAVED_B,
  });
  if (opts.roundtrips > 0) await interleavedB(opts, out, env, call, flush);
  return out;
}

/** Sides whose B runs interleaved ({@link interleavedB}): Celeriac's, and its target's, raw. */
const INTERLEAVED_B: readonly Side[] = ["celeriac", "raw"];
/** Rounds of B (each one block per side); `--roundtrips` is split among them. */
const B_ROUNDS = 8;
/** Unmeasured round trips before each block of B. */
const B_BLOCK_WARMUP = 20;
/** The raw worker's queue in B, beside Celeriac's `bench` in the same database. */
const RAW_B_QUEUE = "bench.raw";

/**
 * Workload B of Celeriac and of the raw client (those of them that ran),
 * measured alike at the same moments: after every drain, both workers are
 * started afresh on the emptied databases (raw on its own queue) and stay
 * up while both clients, kept up too, run {@link B_ROUNDS} rounds of one block
 * each, in turns (bench/rtt_pair.ts). Measured one after the other, each
 * after its own drain, the two figures came from different moments of a
 * shared machine: their ratio moved with whatever else ran then.
 */
async function interleavedB(
  opts: Options,
  out: Partial<Record<Side, SideReport>>,
  env: Record<string, string>,
  call: () => Promise<unknown>,
  flush: () => Promise<unknown>,
): Promise<void> {
  const sides = INTERLEAVED_B.filter((s) => out[s]);
  if (sides.length === 0) return;
  const block = Math.ceil(opts.roundtrips / B_ROUNDS);
  console.log(
    `[${sides.join("+")}] B: ${B_ROUNDS} rounds of ${block} round trips per side ` +
      `(+${B_BLOCK_WARMUP} unmeasured each), after ${WARMUP} warm-up, in turns…`,
  );
  await flush();
  const rawEnv = { ...env, BENCH_QUEUE: RAW_B_QUEUE };
  const workers = sides.map((s) => startWorker(s, opts, s === "raw" ? rawEnv : env));
  const clients = sides.map((s) =>
    s === "raw" ? rawTripper(rawEnv) : celeriacTripper("celeriac", call)
  );
  try {
    const r = await interleaveRoundTrips(clients, B_ROUNDS, block, B_BLOCK_WARMUP);
    const vsRaw = sides.length === 2 ? p50Ratio(r, "celeriac", "raw") : undefined;
    for (const s of sides) {
      out[s]!.drain.roundtrip = latencyStats(r.latencies.get(s)!);
      out[s]!.drain.roundtripRounds = {
        rounds: B_ROUNDS,
        block,
        warm: B_BLOCK_WARMUP,
        ...(s === "celeriac" && vsRaw ? { vsRaw } : {}),
      };
    }
  } finally {
    for (const c of clients) await c.close().catch(() => {});
    for (const w of workers) if (!w.exited) await stopTree(w.child);
    await flush();
  }
}
