/**
 * When an autoscaling worker grows or shrinks its Web Worker pool (Celery's
 * `--autoscale MAX,MIN`): pure rules, fed with readings of the pool and a
 * clock. `autoscaler.ts` reads the pool and applies the decisions.
 *
 * As Celery's autoscaler: the pool grows toward MAX while the worker holds
 * more tasks than it has Web Workers, and shrinks toward MIN once tasks are
 * fewer than Web Workers. Two differences, both for a pool that never
 * stops a running task and does not thrash:
 *
 * - the keep-alive counts from the moment the pool first had more Web
 *   Workers than tasks (Celery counts from its last scale-up, so a pool
 *   that grew at the start of a long burst shrinks the moment it ends, and
 *   one that never grew never shrinks);
 * - only idle Web Workers are retired (Celery's prefork pool likewise
 *   shrinks only idle processes), and a Web Worker pool keeps at least one.
 *
 * @module
 */

import { MAX_POOL_SIZE } from "./pool.ts";

/**
 * Seconds the pool keeps more Web Workers than it needs before it shrinks
 * (Celery's `AUTOSCALE_KEEPALIVE`, 30).
 *
 * @example
 * ```ts
 * import { AUTOSCALE_KEEPALIVE } from "@celeriac/celeriac/worker";
 * AUTOSCALE_KEEPALIVE; // 30
 * ```
 */
export const AUTOSCALE_KEEPALIVE = 30;

/**
 * Autoscale settings of a worker [`--autoscale MAX,MIN`].
 *
 * @example Between 2 and 10 Web Workers, shrinking after 10 s
 * ```ts
 * import type { AutoscaleOptions } from "@celeriac/celeriac/worker";
 * const autoscale: AutoscaleOptions = { max: 10, min: 2, keepalive: 10 };
 * ```
 */
export interface AutoscaleOptions {
  /** The most Web Workers. */
  max: number;
  /** The fewest Web Workers (a pool keeps at least 1 whatever this says). Default 0. */
  min?: number;
  /**
   * Seconds the pool keeps surplus Web Workers before retiring them
   * [`--autoscale-keepalive`, Celery's `AUTOSCALE_KEEPALIVE`]. Default 30.
   */
  keepalive?: number;
}

/**
 * What the policy reads from the pool.
 *
 * @example
 * ```ts
 * import type { PoolReading } from "@celeriac/celeriac/worker";
 * const reading: PoolReading = { qty: 5, processes: 2, idle: 0 };
 * ```
 */
export interface PoolReading {
  /** Tasks the worker holds for the pool (Celery's `qty`: reserved requests). */
  qty: number;
  /** Web Workers the pool keeps now. */
  processes: number;
  /** Of those, how many hold no task (the ones that may be retired). */
  idle: number;
}

/**
 * Parse `--autoscale` as Celery does: `MAX,MIN` in either order (the larger
 * is the maximum), or `MAX` alone with a minimum of 0.
 *
 * @example
 * ```ts
 * import { parseAutoscale } from "@celeriac/celeriac/worker";
 * parseAutoscale("10,3"); // { max: 10, min: 3 }
 * parseAutoscale("3,10"); // { max: 10, min: 3 }
 * parseAutoscale("8"); // { max: 8, min: 0 }
 * ```
 *
 * @param text the flag's value
 * @returns the range
 * @throws {TypeError} for anything but one or two whole numbers with a maximum of at least 1
 */
export function parseAutoscale(text: string): { max: number; min: number } {
  const parts = text.split(",").map((p) => p.trim());
  const nums = parts.map(Number);
  if (parts.length > 2 || nums.some((n, i) => !Number.isInteger(n) || n < 0 || parts[i] === "")) {
    throw new TypeError(
      `--autoscale needs MAX,MIN or MAX (whole numbers of Web Workers), got "${text}"`,
    );
  }
  const [max, min = 0] = nums.sort((a, b) => b - a);
  if (max < 1) throw new TypeError(`--autoscale needs a maximum of at least 1, got "${text}"`);
  return { max, min };
}

/**
 * Check a range; returns the reason it is not one, or null.
 *
 * @example
 * ```ts
 * import { rangeProblem } from "@celeriac/celeriac/worker";
 * rangeProblem(3, 5); // "autoscale needs max >= 1 and max >= min >= 0 (whole numbers), got max=3 min=5"
 * ```
 *
 * @param max the most Web Workers
 * @param min the fewest
 * @returns the problem, or null for a valid range (max at most {@link MAX_POOL_SIZE})
 */
export function rangeProblem(max: number, min: number): string | null {
  const whole = Number.isInteger(max) && Number.isInteger(min);
  if (whole && max > MAX_POOL_SIZE) {
    return `autoscale max=${max} is refused: a pool keeps at most ${MAX_POOL_SIZE} Web Workers`;
  }
  if (whole && max >= 1 && min >= 0 && min <= max) return null;
  return `autoscale needs max >= 1 and max >= min >= 0 (whole numbers), got max=${max} min=${min}`;
}

/**
 * The autoscale rules of one worker: how many Web Workers to add (positive)
 * or retire (negative) now.
 *
 * @example Growing under a burst, shrinking after the keep-alive
 * ```ts
 * import { AutoscalePolicy } from "@celeriac/celeriac/worker";
 * const policy = new AutoscalePolicy({ max: 3, min: 1, keepalive: 30 });
 * policy.decide({ qty: 8, processes: 1, idle: 0 }, 0); // 2: grow to the maximum
 * policy.decide({ qty: 0, processes: 3, idle: 3 }, 1_000); // 0: keep-alive starts
 * policy.decide({ qty: 0, processes: 3, idle: 3 }, 31_001); // -2: back to the minimum
 * ```
 */
export class AutoscalePolicy {
  #max: number;
  #min: number;
  readonly #keepaliveMs: number;
  /** When the pool first had more Web Workers than it needs; null while it needs them all. */
  #surplusSince: number | null = null;

  /**
   * Set the range and keep-alive.
   *
   * @param options the range and keep-alive
   * @throws {RangeError} for a range that is not max >= 1, max >= min >= 0, or a keep-alive <= 0
   */
  constructor(options: AutoscaleOptions) {
    const min = options.min ?? 0;
    const problem = rangeProblem(options.max, min);
    if (problem) throw new RangeError(problem);
    const keepalive = options.keepalive ?? AUTOSCALE_KEEPALIVE;
    if (!(keepalive > 0)) {
      throw new RangeError(`The autoscale keep-alive needs seconds > 0, got ${keepalive}`);
    }
    this.#max = options.max;
    this.#min = min;
    this.#keepaliveMs = keepalive * 1000;
  }

  /** The most Web Workers. */
  get max(): number {
    return this.#max;
  }

  /** Seconds of surplus before idle Web Workers are retired. */
  get keepalive(): number {
    return this.#keepaliveMs / 1000;
  }

  /** The fewest Web Workers, as set (the pool keeps at least 1). */
  get min(): number {
    return this.#min;
  }

  /**
   * Web Workers to add (> 0) or retire (< 0) now; 0 to leave the pool be.
   *
   * @param r the pool now
   * @param now the clock, in milliseconds
   * @returns the change
   */
  decide(r: PoolReading, now: number): number {
    const wanted = Math.min(r.qty, this.#max);
    if (wanted > r.processes) {
      this.#surplusSince = null;
      return wanted - r.processes;
    }
    const keep = Math.max(r.qty, this.#min, 1);
    if (keep >= r.processes) {
      this.#surplusSince = null;
      return 0;
    }
    this.#surplusSince ??= now;
    if (now - this.#surplusSince < this.#keepaliveMs) return 0;
    const retire = Math.min(r.processes - keep, r.idle);
    return retire > 0 ? -retire : 0;
  }

  /**
   * Change the range (Celery's `autoscale` command): a pool above the new
   * maximum shrinks to it now, one below the new minimum grows to it now.
   *
   * @param max the new maximum; null keeps it
   * @param min the new minimum; null keeps it
   * @param processes Web Workers the pool keeps now
   * @returns the change to apply to the pool now
   * @throws {RangeError} when the result is not max >= 1, max >= min >= 0 (nothing changes then)
   */
  update(max: number | null, min: number | null, processes: number): number {
    const newMax = max ?? this.#max;
    const newMin = min ?? this.#min;
    const problem = rangeProblem(newMax, newMin);
    if (problem) throw new RangeError(problem);
    this.#max = newMax;
    this.#min = newMin;
    if (processes > newMax) return newMax - processes;
    const floor = Math.max(newMin, 1);
    return processes < floor ? floor - processes : 0;
  }
}
