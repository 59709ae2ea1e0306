// deno-lint-ignore-file no-console
/**
 * The chord workload, on Redis (broker db 14, results db 15, as the drain):
 * one chord of N `bench.noop` header members and a `bench.tsum` body, applied
 * by each side's own client to its own worker (prefork / Web Workers,
 * concurrency 2); measured from apply to the body's result, which must be N.
 * Run alone with `deno run -A bench/chord_workload.ts --chord 1000`.
 *
 * @module
 */

import { chord } from "../mod.ts";
import { type Options, pollUntil, pythonClient, type Side, SIDES, startWorker } from "./common.ts";
import { stopTree } from "./proc.ts";
import { benchDatabases, standaloneOptions } from "./redis_workload.ts";
import { noop, tsum } from "./tasks.ts";

/** One side's chord figures. */
export interface ChordResult {
  /** Header members. */
  members: number;
  /** Seconds the client took to apply the chord (publish every member). */
  applySeconds: number;
  /** Seconds from apply to the body's result. */
  seconds: number;
  /** Header members completed per second, apply to body result. */
  membersPerSecond: number;
  /** The worker command. */
  worker: string;
}

async function celeriacChord(n: number): Promise<{ applySeconds: number; seconds: number }> {
  const start = performance.now();
  const r = await chord(Array.from({ length: n }, () => noop.s()), tsum.s()).applyAsync();
  const applied = performance.now();
  const value = await r.get({ timeout: 600_000 });
  const end = performance.now();
  if (value !== n) throw new Error(`the chord body returned ${value}, expected ${n}`);
  return { applySeconds: (applied - start) / 1000, seconds: (end - start) / 1000 };
}

/**
 * Run the chord on each side (or `--only` one).
 *
 * @example
 * ```ts ignore
 * const { celeriac, celery } = await runChord(opts, 1000);
 * ```
 *
 * @param opts the bench's options
 * @param n header members
 * @returns each side's figures
 */
export async function runChord(
  opts: Options,
  n: number,
): Promise<Partial<Record<Side, ChordResult>>> {
  await using dbs = benchDatabases(opts);
  const { env, results, flush } = dbs;
  const out: Partial<Record<Side, ChordResult>> = {};
  for (const side of SIDES) {
    if (opts.only && opts.only !== side) continue;
    await flush();
    const worker = startWorker(side, opts, env);
    try {
      // Ready when it has run one task.
      const warm = await noop.delay();
      await pollUntil(
        async () => (await warm.state()) === "SUCCESS",
        20,
        120_000,
        "a first task",
        worker,
      );
      console.log(`[${side}] chord of ${n}: ${worker.command}`);
      const t = side === "celeriac"
        ? await celeriacChord(n)
        : await pythonClient(["chord", String(n)], env) as {
          applySeconds: number;
          seconds: number;
        };
      // The join's keys are deleted once the body is sent (as Celery does), so its result can
      // come back first: they must be gone soon after.
      await pollUntil(
        async () => (await results.keys("celery-taskset-meta-*")).length === 0,
        5,
        2_000,
        "the chord's keys to be deleted after the join",
        worker,
      );
      out[side] = {
        members: n,
        applySeconds: t.applySeconds,
        seconds: t.seconds,
        membersPerSecond: n / t.seconds,
        worker: worker.command,
      };
    } finally {
      if (!worker.exited) await stopTree(worker.child);
    }
  }
  return out;
}

/**
 * The summary line of the chord workload.
 *
 * @example
 * ```ts ignore
 * console.log(chordSummary(await runChord(opts, 1000)));
 * ```
 *
 * @param r each side's figures
 * @returns the line
 */
export function chordSummary(r: Partial<Record<Side, ChordResult>>): string {
  const show = (s?: ChordResult) =>
    s
      ? `${(s.seconds * 1000).toFixed(0)} ms (${s.membersPerSecond.toFixed(0)} members/s, apply ${
        (s.applySeconds * 1000).toFixed(0)
      } ms)`
      : "n/a";
  const ratio = r.celeriac && r.celery
    ? ` — ${(r.celery.seconds / r.celeriac.seconds).toFixed(2)}x`
    : "";
  const n = r.celeriac?.members ?? r.celery?.members;
  return `redis chord of ${n} (apply → body result): celeriac ${show(r.celeriac)}, celery ${
    show(r.celery)
  }${ratio}`;
}

if (import.meta.main) {
  const { opts, n } = standaloneOptions(Deno.args, "chord", 1000);
  console.log(chordSummary(await runChord(opts, n)));
}
