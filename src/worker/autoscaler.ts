/**
 * The autoscaler of a worker run with `--autoscale MAX,MIN`: reads the
 * pool every second and whenever a task is handed to it, and applies
 * {@link AutoscalePolicy}'s decisions with `pool.resize`. It also answers
 * the `autoscale` control command and the `autoscaler` field of `stats`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Lifecycle } from "./lifecycle.ts";
import type { Pool } from "./pool.ts";
import { type AutoscaleOptions, AutoscalePolicy } from "./autoscale_policy.ts";

const log = getLogger(["celeriac", "worker", "autoscale"]);

/** Milliseconds between checks of the pool (Celery's autoscaler thread: 1 s). */
const CHECK_INTERVAL_MS = 1000;

/**
 * The `autoscaler` field of a worker's `stats` reply, as Celery's.
 *
 * @example
 * ```ts
 * import type { AutoscalerInfo } from "@celeriac/celeriac/worker";
 * const info: AutoscalerInfo = { max: 10, min: 2, current: 4, qty: 6 };
 * ```
 */
export interface AutoscalerInfo {
  /** The most Web Workers. */
  max: number;
  /** The fewest Web Workers. */
  min: number;
  /** Web Workers now. */
  current: number;
  /** Tasks the worker holds for the pool. */
  qty: number;
}

/**
 * What the autoscaler reads and acts on.
 *
 * @example
 * ```ts
 * import type { AutoscalerHost, Pool } from "@celeriac/celeriac/worker";
 * function hostOf(pool: Pool, running: Set<string>, wake: () => void): AutoscalerHost {
 *   return { pool: () => pool, reserved: () => running.size, resized: wake };
 * }
 * ```
 */
export interface AutoscalerHost {
  /** The pool to resize (the threads pool), once it exists. */
  pool: () => Pool;
  /** How many tasks the worker holds for the pool. */
  reserved: () => number;
  /** Called after each resize (the worker's take loop looks at its free slots again). */
  resized?: () => void;
  /** The clock in milliseconds. Default `performance.now`. */
  now?: () => number;
}

/**
 * Grows and shrinks a worker's pool between a minimum and a maximum.
 *
 * @example
 * ```ts
 * import { Autoscaler, type Lifecycle, type Pool } from "@celeriac/celeriac/worker";
 * function autoscale(pool: Pool, running: Set<string>, lifecycle: Lifecycle, signal: AbortSignal) {
 *   const scaler = new Autoscaler({ max: 8, min: 2 }, { pool: () => pool, reserved: () => running.size });
 *   scaler.start(lifecycle, signal);
 *   return scaler.info(); // { max: 8, min: 2, current: 2, qty: 0 }
 * }
 * ```
 */
export class Autoscaler {
  readonly #policy: AutoscalePolicy;
  readonly #host: AutoscalerHost;
  readonly #now: () => number;
  /** The last take filled every slot it asked for: more tasks are likely waiting. */
  #saturated = false;

  /**
   * Configure the autoscaler; nothing is resized before {@link Autoscaler.start}.
   *
   * @param options the range and keep-alive
   * @param host the pool, the tasks held, the clock
   * @throws {RangeError} for an invalid range or keep-alive
   */
  constructor(options: AutoscaleOptions, host: AutoscalerHost) {
    this.#policy = new AutoscalePolicy(options);
    this.#host = host;
    this.#now = host.now ?? (() => performance.now());
  }

  /**
   * Check the pool every second and on every task handed to it, until
   * `signal` aborts.
   *
   * @param lifecycle the worker's lifecycle (its `started` events)
   * @param signal stops the autoscaler
   */
  start(lifecycle: Lifecycle, signal: AbortSignal): void {
    log.info("Autoscale: {min} to {max} Web Worker(s), idle ones retired after {keepalive} s", {
      min: Math.max(1, this.#policy.min),
      max: this.#policy.max,
      keepalive: this.#policy.keepalive,
    });
    const timer = setInterval(() => this.check(), CHECK_INTERVAL_MS);
    const unsubscribe = lifecycle.subscribe((e) => {
      if (e.type === "started") this.check();
    });
    signal.addEventListener("abort", () => {
      clearInterval(timer);
      unsubscribe();
    }, { once: true });
  }

  /**
   * Tell the autoscaler how the last take went: a take that got every
   * message it asked for means more may wait on the broker, which counts
   * as one more task held (so a pool whose window holds one task per Web
   * Worker still grows).
   *
   * @param asked messages asked for
   * @param got messages received
   */
  took(asked: number, got: number): void {
    this.#saturated = asked > 0 && got >= asked;
  }

  /** Read the pool and grow or shrink it if the policy says so. */
  check(): void {
    const qty = this.#host.reserved() + (this.#saturated ? 1 : 0);
    const delta = this.#policy.decide(
      { qty, processes: this.#host.pool().concurrency, idle: this.#host.pool().idle },
      this.#now(),
    );
    if (delta !== 0) this.#resize(delta, `${qty} task(s) held`);
  }

  /**
   * Change the range (the `autoscale` control command); the pool moves
   * into it at once.
   *
   * @param max the new maximum; null keeps it
   * @param min the new minimum; null keeps it
   * @returns the range now, `[max, min]`
   * @throws {RangeError} when the range would not be max >= 1, max >= min >= 0
   */
  update(max: number | null, min: number | null): [number, number] {
    const delta = this.#policy.update(max, min, this.#host.pool().concurrency);
    if (delta !== 0) this.#resize(delta, "the autoscale range changed");
    return [this.#policy.max, this.#policy.min];
  }

  /**
   * The `autoscaler` field of `stats`.
   *
   * @returns max, min, current and qty
   */
  info(): AutoscalerInfo {
    return {
      max: this.#policy.max,
      min: this.#policy.min,
      current: this.#host.pool().concurrency,
      qty: this.#host.reserved(),
    };
  }

  #resize(delta: number, why: string): void {
    log.info("Scaling {how} {n} Web Worker(s): {why}", {
      how: delta > 0 ? "up" : "down",
      n: Math.abs(delta),
      why,
    });
    try {
      this.#host.pool().resize(delta);
      this.#host.resized?.();
    } catch (err) {
      log.error("Autoscaler cannot resize the pool: {error}", { error: (err as Error).message });
    }
  }
}
