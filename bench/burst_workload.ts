// deno-lint-ignore-file no-console
/**
 * Workload E, on Redis (broker db 14, results db 15, as the drain): a burst
 * onto an idle worker. The worker is started and runs one task, then sits
 * idle for {@link IDLE_MS} (blocked in its take); N `bench.noop` tasks are
 * then sent at once with the side's batch API and the figure is the time
 * from the send to the N-th result stored. {@link BURST_ROUNDS} bursts per
 * worker, each after the same idle pause; the median is reported. Celeriac
 * (`delayMany` in this process) and BullMQ (`addBulk`, timed inside
 * `node bench/peers/bullmq.mjs burst`). Run alone with
 * `deno run -A bench/burst_workload.ts --burst 1000`.
 *
 * @module
 */

import type { Redis } from "ioredis";
import {
  ENQUEUE_BATCH,
  type Options,
  peerClient,
  pollUntil,
  type RunningWorker,
  type Side,
  startWorker,
} from "./common.ts";
import { stopTree } from "./proc.ts";
import { benchDatabases, countSuccesses, standaloneOptions } from "./redis_workload.ts";
import { noop } from "./tasks.ts";

/** Bursts per worker. */
export const BURST_ROUNDS = 5;
/** Milliseconds the worker sits idle before each burst. */
export const IDLE_MS = 300;
/** Poll interval of the result count during a burst. */
export const BURST_POLL_MS = 2;
/** The sides that run workload E: the ones with a batch API timed in-process. */
export const BURST_SIDES = ["celeriac", "bullmq"] as const;

/**
 * One side's burst figures.
 *
 * @example
 * ```ts ignore
 * const { ms, roundsMs }: BurstResult = (await runBurst(opts, 1000)).celeriac!;
 * ```
 */
export interface BurstResult {
  /** Tasks per burst. */
  n: number;
  /** Milliseconds from the send to the N-th result, per burst. */
  roundsMs: number[];
  /** The median of {@link roundsMs}. */
  ms: number;
  /** Milliseconds the client took to send each burst. */
  sendMs: number[];
  /** The worker command. */
  worker: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function celeriacBursts(
  n: number,
  results: Redis,
  worker: RunningWorker,
): Promise<{ roundsMs: number[]; sendMs: number[] }> {
  const warm = await noop.delay();
  await pollUntil(
    async () => (await warm.state()) === "SUCCESS",
    20,
    120_000,
    "a first task",
    worker,
  );
  const roundsMs: number[] = [];
  const sendMs: number[] = [];
  for (let round = 0; round < BURST_ROUNDS; round++) {
    await sleep(IDLE_MS);
    const target = await results.dbsize() + n;
    const start = performance.now();
    for (let sent = 0; sent < n; sent += ENQUEUE_BATCH) {
      await noop.delayMany(Array.from({ length: Math.min(ENQUEUE_BATCH, n - sent) }, () => []));
    }
    sendMs.push(performance.now() - start);
    const done = await pollUntil(
      async () => await results.dbsize() >= target,
      BURST_POLL_MS,
      120_000,
      `${n} results`,
      worker,
    );
    roundsMs.push(done - start);
  }
  const ok = await countSuccesses(results);
  if (ok !== 1 + BURST_ROUNDS * n) {
    throw new Error(`${ok}/${1 + BURST_ROUNDS * n} SUCCESS results after the bursts`);
  }
  return { roundsMs, sendMs };
}

/**
 * Run workload E on each side of {@link BURST_SIDES} (or the `--only` one).
 *
 * @example
 * ```ts ignore
 * const { celeriac, bullmq } = await runBurst(opts, 1000);
 * ```
 *
 * @param opts the bench's options
 * @param n tasks per burst
 * @returns each side's figures
 */
export async function runBurst(
  opts: Options,
  n: number,
): Promise<Partial<Record<Side, BurstResult>>> {
  await using dbs = benchDatabases(opts);
  const { env, results, flush } = dbs;
  const out: Partial<Record<Side, BurstResult>> = {};
  for (const side of BURST_SIDES) {
    if (opts.only && opts.only !== side) continue;
    await flush();
    const worker = startWorker(side, opts, env);
    try {
      console.log(
        `[${side}] ${BURST_ROUNDS} bursts of ${n} onto an idle worker: ${worker.command}`,
      );
      const t = side === "celeriac"
        ? await celeriacBursts(n, results, worker)
        : await peerClient(side, [
          "burst",
          String(n),
          String(BURST_ROUNDS),
          String(IDLE_MS),
          String(BURST_POLL_MS),
        ], env) as { roundsMs: number[]; sendMs: number[] };
      out[side] = { n, ...t, ms: median(t.roundsMs), worker: worker.command };
    } finally {
      if (!worker.exited) await stopTree(worker.child);
    }
  }
  return out;
}

/**
 * The summary line of workload E.
 *
 * @example
 * ```ts ignore
 * console.log(burstSummary(await runBurst(opts, 1000)));
 * ```
 *
 * @param r each side's figures
 * @returns the line
 */
export function burstSummary(r: Partial<Record<Side, BurstResult>>): string {
  const show = (s?: BurstResult) =>
    s
      ? `${s.ms.toFixed(0)} ms (bursts ${s.roundsMs.map((x) => x.toFixed(0)).join(", ")}; send ${
        median(s.sendMs).toFixed(0)
      } ms)`
      : "n/a";
  const ratio = r.celeriac && r.bullmq ? ` — ${(r.bullmq.ms / r.celeriac.ms).toFixed(2)}x` : "";
  const n = r.celeriac?.n ?? r.bullmq?.n;
  return `redis: E burst of ${n} onto an idle worker (send → last result): celeriac ${
    show(r.celeriac)
  }, bullmq ${show(r.bullmq)}${ratio}`;
}

if (import.meta.main) {
  const { opts, n } = standaloneOptions(Deno.args, "burst", 1000);
  console.log(burstSummary(await runBurst(opts, n)));
}
