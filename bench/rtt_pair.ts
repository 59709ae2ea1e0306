// deno-lint-ignore-file no-console
/**
 * Workload B (sequential `bench.noop` round trips on Redis) of several sides
 * measured alike and interleaved, so that their ratios do not depend on when
 * each side happened to run: {@link interleaveRoundTrips}, which the bench
 * uses for Celeriac and the raw client, and a command of its own,
 *
 * `deno run -A bench/rtt_pair.ts [--rounds 8] [--block 250] [--warm 20] [--base DIR] [--cpu] [--json FILE]`,
 *
 * which starts this checkout's Celeriac worker (the bench's command, broker
 * db 14, results db 15), with `--base DIR` a second Celeriac worker run from
 * another checkout (`DIR/worker.ts`, db 12/13: a base worktree of main, its
 * client the same as the first's, from this checkout), and the raw peer's
 * worker (db 10/11), all kept up to the end, and prints each side's
 * percentiles and its p50 ratio to raw's (and base's) with the range of the
 * per-round ratios. With `--cpu`, each side's CPU time and run-queue wait
 * per round trip by thread (its client, its worker, redis-server; see
 * `rtt_cpu.ts`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Redis } from "ioredis";
import type { Celery } from "../mod.ts";
import { type LatencyStats, latencyStats, PEERS_DIR, WARMUP } from "./common.ts";
import { processTree, startBenchWorker, stopTree } from "./proc.ts";
import { CpuMeter, formatTimes, type MeteredProcess } from "./rtt_cpu.ts";
import { app, BENCH_QUEUE, noop } from "./tasks.ts";

/** One side's client: runs round trips on request. */
export interface RoundTripper {
  /** Its name in the output. */
  readonly name: string;
  /** `warm` unmeasured then `n` measured round trips; resolves with the measured latencies (ms). */
  run(n: number, warm: number): Promise<number[]>;
  /** Release the client (not the worker). */
  close(): Promise<void>;
  /** The client's process, when it is not this one. */
  readonly pid?: number;
}

/** What {@link interleaveRoundTrips} measured. */
export interface Interleaved {
  /** Rounds, measured round trips per block, unmeasured ones before each block. */
  rounds: number;
  block: number;
  warm: number;
  /** One-minute load average at the start of each round. */
  load: number[];
  /** Each side's latencies over all its blocks (ms), by name. */
  latencies: Map<string, number[]>;
  /** Each side's p50 per block, in round order, by name. */
  blockP50: Map<string, number[]>;
}

/**
 * {@link WARMUP} unmeasured round trips of each side, then `rounds` rounds,
 * each one block per side (`warm` unmeasured round trips, then `block`
 * measured ones), the order rotated each round (a, b, c; b, c, a; ...): the
 * sides share the machine's moments alike, each client and worker already
 * up and warm when its block starts.
 *
 * @example
 * ```ts ignore
 * const r = await interleaveRoundTrips([celeriac, raw], 8, 250, 20);
 * latencyStats(r.latencies.get("raw")!).p50;
 * ```
 *
 * @param sides the clients (their workers up)
 * @param rounds rounds
 * @param block measured round trips per block
 * @param warm unmeasured round trips before each block
 * @param meters meters of the sides' blocks, by name (see `rtt_cpu.ts`); none by default
 * @returns the latencies
 */
export async function interleaveRoundTrips(
  sides: readonly RoundTripper[],
  rounds: number,
  block: number,
  warm: number,
  meters: ReadonlyMap<string, CpuMeter> = new Map(),
): Promise<Interleaved> {
  for (const s of sides) await s.run(0, WARMUP);
  const latencies = new Map(sides.map((s) => [s.name, [] as number[]]));
  const blockP50 = new Map(sides.map((s) => [s.name, [] as number[]]));
  const load: number[] = [];
  for (let r = 0; r < rounds; r++) {
    load.push(Deno.loadavg()[0]);
    for (let k = 0; k < sides.length; k++) {
      const s = sides[(r + k) % sides.length];
      const meter = meters.get(s.name);
      const lat = meter
        ? await meter.around(block + warm, () => s.run(block, warm))
        : await s.run(block, warm);
      latencies.get(s.name)!.push(...lat);
      blockP50.get(s.name)!.push(latencyStats(lat).p50);
    }
  }
  return { rounds, block, warm, load, latencies, blockP50 };
}

/**
 * `a`'s p50 over `b`'s, over all blocks, and the lowest and highest of the
 * per-round ratios of their block p50s.
 *
 * @example
 * ```ts ignore
 * const { p50, min, max } = p50Ratio(r, "celeriac", "raw");
 * ```
 */
export function p50Ratio(
  r: Interleaved,
  a: string,
  b: string,
): { p50: number; min: number; max: number } {
  const pa = r.blockP50.get(a)!, pb = r.blockP50.get(b)!;
  const per = pa.map((x, i) => x / pb[i]);
  return {
    p50: latencyStats(r.latencies.get(a)!).p50 / latencyStats(r.latencies.get(b)!).p50,
    min: Math.min(...per),
    max: Math.max(...per),
  };
}

/**
 * A Celeriac client: `call` once per round trip (the bench's: `noop.delay()`
 * then `.get({ timeout: 30_000 })`), which must resolve with 1.
 *
 * @example
 * ```ts ignore
 * const c = celeriacTripper("celeriac", async () => await (await noop.delay()).get());
 * ```
 */
export function celeriacTripper(
  name: string,
  call: () => Promise<unknown>,
  close: () => Promise<void> = () => Promise.resolve(),
): RoundTripper {
  return {
    name,
    async run(n, warm) {
      const out: number[] = [];
      for (let i = 0; i < warm + n; i++) {
        const start = performance.now();
        const value = await call();
        const ms = performance.now() - start;
        if (value !== 1) throw new Error(`${name}: bench.noop returned ${JSON.stringify(value)}`);
        if (i >= warm) out.push(ms);
      }
      return out;
    },
    close,
  };
}

/**
 * The raw peer's client, `node bench/peers/raw_redis.mjs roundtrip-serve`,
 * kept up: one line in per block, its latencies out.
 *
 * @example
 * ```ts ignore
 * const raw = rawTripper({ BENCH_BROKER_URL: "redis://127.0.0.1:6379/14", BENCH_QUEUE: "bench.raw" });
 * ```
 *
 * @param env its environment (broker URL, backend db, queue)
 */
export function rawTripper(env: Record<string, string>): RoundTripper {
  const client = new Deno.Command("node", {
    args: ["raw_redis.mjs", "roundtrip-serve"],
    cwd: PEERS_DIR,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = client.stdin.getWriter();
  const lines = client.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  const nextLine = async (): Promise<string> => {
    while (!pending.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("the raw round-trip client exited");
      pending += value;
    }
    const at = pending.indexOf("\n");
    const line = pending.slice(0, at);
    pending = pending.slice(at + 1);
    return line;
  };
  return {
    name: "raw",
    pid: client.pid,
    async run(n, warm) {
      await writer.write(new TextEncoder().encode(`${n} ${warm}\n`));
      return (JSON.parse(await nextLine()) as { latencies_ms: number[] }).latencies_ms;
    },
    async close() {
      await writer.close().catch(() => {});
      await client.status;
      await lines.cancel().catch(() => {});
    },
  };
}

/**
 * A meter per side: its client (this process unless it has its own), its
 * worker's process tree (`workers` in the order of `sides`) and redis-server.
 */
async function sideMeters(
  sides: readonly RoundTripper[],
  workers: readonly Deno.ChildProcess[],
  redis: Redis,
): Promise<Map<string, CpuMeter>> {
  const info = await redis.info("server");
  const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  return new Map(sides.map((s, i) => {
    const processes = (): MeteredProcess[] => [
      { role: "client", pid: s.pid ?? Deno.pid },
      ...processTree(workers[i].pid).map((pid) => ({ role: "worker", pid })),
      { role: "redis", pid: redisPid },
    ];
    return [s.name, new CpuMeter(processes)];
  }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "8" },
      block: { type: "string", default: "250" },
      warm: { type: "string", default: "20" },
      base: { type: "string" },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
      json: { type: "string" },
      cpu: { type: "boolean", default: false },
    },
  });
  const server = values.redis.replace(/\/\d*$/, "");
  const url = (db: number) => `${server}/${db}`;
  const dbs = [10, 11, 12, 13, 14, 15].map((db) => new Redis(url(db)));
  const flush = () => Promise.allSettled(dbs.map((r) => r.flushdb()));
  await flush();
  const children: Deno.ChildProcess[] = [];
  const sides: RoundTripper[] = [];
  try {
    app.configure({ broker: url(14), backend: url(15) });
    children.push(
      startBenchWorker({ broker: url(14), backend: url(15), queue: BENCH_QUEUE }).child,
    );
    sides.push(
      celeriacTripper("celeriac", async () => await (await noop.delay()).get({ timeout: 30_000 })),
    );
    if (values.base) {
      // The base checkout's client too, so that a change to the client is compared as well.
      const baseMod = pathToFileURL(resolve(values.base, "mod.ts")).href;
      const BaseCelery = (await import(baseMod) as { Celery: typeof Celery }).Celery;
      const base = new BaseCelery({ defaultQueue: BENCH_QUEUE });
      const baseNoop = base.task("bench.noop", () => 1);
      base.configure({ broker: url(12), backend: url(13) });
      children.push(
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "worker.ts", "--app", "bench/tasks.ts", "-c", "2", "-Q", BENCH_QUEUE],
          cwd: values.base,
          env: { CELERY_BROKER_URL: url(12), CELERY_RESULT_BACKEND: url(13) },
          stdout: "null",
          stderr: "null",
        }).spawn(),
      );
      sides.push(
        celeriacTripper(
          "base",
          async () => await (await baseNoop.delay()).get({ timeout: 30_000 }),
          () => base.close(),
        ),
      );
    }
    const rawEnv = { BENCH_BROKER_URL: url(10), BENCH_BACKEND_DB: "11" };
    children.push(
      new Deno.Command("node", {
        args: ["raw_redis.mjs", "worker"],
        cwd: PEERS_DIR,
        env: rawEnv,
        stdout: "null",
        stderr: "inherit",
      }).spawn(),
    );
    sides.push(rawTripper(rawEnv));
    const meters = values.cpu ? await sideMeters(sides, children, dbs[0]) : new Map();
    const r = await interleaveRoundTrips(
      sides,
      Number(values.rounds),
      Number(values.block),
      Number(values.warm),
      meters,
    );
    const stats = new Map<string, LatencyStats>(
      [...r.latencies].map(([name, lat]) => [name, latencyStats(lat)]),
    );
    const f = (x: number) => x.toFixed(3);
    console.log(
      `${r.rounds} rounds of ${r.block} round trips per side (+${r.warm} unmeasured each), ` +
        `load ${Math.min(...r.load).toFixed(2)}–${Math.max(...r.load).toFixed(2)}:`,
    );
    const ratios: Record<string, ReturnType<typeof p50Ratio>> = {};
    for (const [name, st] of stats) {
      let line = `  ${name.padEnd(9)} p50 ${f(st.p50)} p90 ${f(st.p90)} p99 ${f(st.p99)} max ${
        f(st.max)
      } ms; p99/p50 ${(st.p99 / st.p50).toFixed(2)}`;
      for (const other of ["raw", "base"]) {
        if (other === name || !stats.has(other) || name === "raw") continue;
        const q = ratios[`${name}/${other}`] = p50Ratio(r, name, other);
        line += `; p50 ${q.p50.toFixed(2)}x ${other} (rounds ${q.min.toFixed(2)}–${
          q.max.toFixed(2)
        })`;
      }
      console.log(line);
    }
    for (const [name, meter] of meters) console.log(formatTimes(name, meter.perRoundTrip()));
    if (values.json) {
      await Deno.writeTextFile(
        values.json,
        JSON.stringify(
          {
            ...r,
            latencies: undefined,
            stats: Object.fromEntries(stats),
            blockP50: Object.fromEntries(r.blockP50),
            ratios,
          },
          null,
          2,
        ),
      );
    }
  } finally {
    for (const s of sides) await s.close();
    for (const c of children) await stopTree(c);
    await flush();
    for (const d of dbs) d.disconnect();
    await app.close();
  }
}

if (import.meta.main) await main();
