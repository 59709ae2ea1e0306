/**
 * Throughput (succeeded and failed per second) and runtime percentiles over
 * the last minutes, in one-second buckets of a ring. Pure; bounded memory.
 *
 * @module
 */

/**
 * One point of the Overview chart.
 *
 * @example
 * ```ts
 * import type { SeriesPoint } from "@celeriac/celeriac/dashboard";
 * const p: SeriesPoint = { t: 1795490261, succeeded: 120, failed: 2, p50: 0.004, p95: 0.02, p99: 0.05 };
 * ```
 */
export interface SeriesPoint {
  /** Start of the window, Unix seconds. */
  t: number;
  /** Tasks that succeeded per second over the window. */
  succeeded: number;
  /** Tasks that failed per second over the window. */
  failed: number;
  /** Median runtime in seconds, null without samples. */
  p50: number | null;
  /** 95th percentile runtime. */
  p95: number | null;
  /** 99th percentile runtime. */
  p99: number | null;
}

interface Bucket {
  second: number;
  succeeded: number;
  failed: number;
  runtimes: number[];
  seen: number;
}

/** Runtimes kept per second (reservoir sample). */
const SAMPLES_PER_SECOND = 200;

/**
 * @param sorted ascending values
 * @param q quantile 0..1
 * @returns the nearest-rank quantile
 */
function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/**
 * The last `seconds` seconds of outcomes.
 *
 * @example
 * ```ts
 * import { Throughput } from "@celeriac/celeriac/dashboard";
 * const tp = new Throughput({ seconds: 600 });
 * tp.record("task-succeeded", 1000.2, 0.01);
 * tp.series(1001, { window: 60, step: 5 }).length; // 12
 * ```
 */
export class Throughput {
  readonly #ring: Bucket[];

  /**
   * An empty ring.
   *
   * @param options `seconds` kept (default 600)
   */
  constructor(options: { seconds?: number } = {}) {
    const n = options.seconds ?? 600;
    this.#ring = Array.from(
      { length: n },
      () => ({ second: -1, succeeded: 0, failed: 0, runtimes: [], seen: 0 }),
    );
  }

  #bucket(second: number): Bucket {
    const b = this.#ring[second % this.#ring.length];
    if (b.second !== second) {
      b.second = second;
      b.succeeded = 0;
      b.failed = 0;
      b.runtimes.length = 0;
      b.seen = 0;
    }
    return b;
  }

  /**
   * Count an outcome.
   *
   * @param type `task-succeeded` or `task-failed` (others are ignored)
   * @param timestamp Unix seconds; one that is not a number of seconds
   *   since the epoch (missing, negative) counts as now, as the task table
   *   takes it
   * @param runtime seconds the task ran, if known
   */
  record(type: string, timestamp: number, runtime?: number): void {
    if (type !== "task-succeeded" && type !== "task-failed") return;
    const at = Number.isFinite(timestamp) && timestamp >= 0 ? timestamp : Date.now() / 1000;
    const b = this.#bucket(Math.floor(at));
    if (type === "task-succeeded") b.succeeded++;
    else b.failed++;
    if (typeof runtime === "number" && Number.isFinite(runtime)) {
      b.seen++;
      if (b.runtimes.length < SAMPLES_PER_SECOND) b.runtimes.push(runtime);
      else {
        const j = Math.floor(Math.random() * b.seen);
        if (j < SAMPLES_PER_SECOND) b.runtimes[j] = runtime;
      }
    }
  }

  /**
   * Points of `step` seconds over the last `window` seconds before `now`.
   *
   * @param now Unix seconds
   * @param options `window` (default 300, at most the ring) and `step` (default 5)
   * @returns the points, oldest first
   */
  series(now: number, options: { window?: number; step?: number } = {}): SeriesPoint[] {
    const step = Math.max(1, Math.floor(options.step ?? 5));
    const window = Math.min(this.#ring.length, Math.max(step, Math.floor(options.window ?? 300)));
    const end = Math.floor(now / step) * step; // window boundaries aligned to step
    const points: SeriesPoint[] = [];
    for (let start = end - window + step; start <= end; start += step) {
      let succeeded = 0, failed = 0;
      const runtimes: number[] = [];
      for (let s = start; s < start + step; s++) {
        const b = this.#ring[((s % this.#ring.length) + this.#ring.length) % this.#ring.length];
        if (b.second !== s) continue;
        succeeded += b.succeeded;
        failed += b.failed;
        runtimes.push(...b.runtimes);
      }
      runtimes.sort((a, b) => a - b);
      points.push({
        t: start,
        succeeded: succeeded / step,
        failed: failed / step,
        p50: quantile(runtimes, 0.5),
        p95: quantile(runtimes, 0.95),
        p99: quantile(runtimes, 0.99),
      });
    }
    return points;
  }
}
