/**
 * What the `threads` pool (`thread_pool.ts`) is configured with: Web
 * Workers per sandbox, their slots, the app module, recycling; and the
 * checks of its size, when it is built and when it is resized.
 *
 * @module
 */

import type { CeleryOptions } from "../client/config.ts";
import { MAX_POOL_SIZE } from "./pool.ts";
import type { RecycleOptions } from "./recycling.ts";
import type { Sandbox } from "./sandboxes.ts";

/**
 * Options of {@link ThreadPool}.
 *
 * @example Four Web Workers per sandbox, recycled every 1000 tasks
 * ```ts
 * import { planSandboxes, ThreadPool, type ThreadPoolOptions } from "@celeriac/celeriac/worker";
 * const options: ThreadPoolOptions = {
 *   size: 4,
 *   slots: 32,
 *   module: new URL("./tasks.ts", import.meta.url).href,
 *   exportName: "app",
 *   sandboxes: planSandboxes([
 *     { name: "tasks.add", options: {} },
 *     { name: "tasks.fetch", options: { permissions: { net: ["api.example.com:443"] } } },
 *   ], "none"),
 *   recycle: { maxTasksPerChild: 1000 },
 *   config: { broker: "redis://127.0.0.1:6379/0" },
 * };
 * const pool = new ThreadPool(options, {
 *   onOutcomes: () => {},
 *   onPublish: () => Promise.resolve(),
 *   onLost: () => {},
 *   onTimeLimit: () => {},
 * });
 * pool.capacity; // 256: 2 sandboxes × 4 Web Workers × 32 slots; they start with pool.start()
 * ```
 */
export interface ThreadPoolOptions {
  /** Number of Web Workers of each sandbox. */
  size: number;
  /** Tasks one Web Worker may hold at once. */
  slots: number;
  /** URL of the app module each Web Worker imports. */
  module: string;
  /** Export holding the app. */
  exportName?: string;
  /**
   * Groups of tasks and their permissions ({@link planSandboxes}); each
   * gets `size` Web Workers. Default: one group with the process's
   * permissions, running every task.
   */
  sandboxes?: Sandbox[];
  /** When Web Workers are replaced (tasks run, memory). */
  recycle?: RecycleOptions;
  /** The worker's app configuration, applied to the app in each Web Worker. */
  config: CeleryOptions;
  /** The most bytes a compressed body may decompress to (`WorkerOptions.maxDecompressedSize`). */
  maxDecompressedSize?: number;
  /**
   * Ms a terminated Web Worker's thread must keep running to count as
   * leaked (`WorkerOptions.leakedThreadsGrace`). Default `LEAK_GRACE_MS` (5000).
   */
  leakGraceMs?: number;
}

/**
 * How many sandbox groups of Web Workers a pool keeps: one per sandbox,
 * one when there is none.
 *
 * @example
 * ```ts ignore
 * groupCount({ size: 4, slots: 8, module, config: {} }); // 1
 * ```
 *
 * @param options the pool's options
 * @returns the number of groups
 */
export function groupCount(options: ThreadPoolOptions): number {
  return options.sandboxes?.length ? options.sandboxes.length : 1;
}

/**
 * Check a pool's options before it is built.
 *
 * @example
 * ```ts ignore
 * checkPoolOptions({ size: 0, slots: 8, module, config: {} }); // throws RangeError
 * ```
 *
 * @param options the pool's options
 * @throws {RangeError} for no Web Worker or slot, more Web Workers than
 *   {@link MAX_POOL_SIZE}, or a `leakGraceMs` that is not a number of ms > 0
 */
export function checkPoolOptions(options: ThreadPoolOptions): void {
  if (!(options.size >= 1) || !(options.slots >= 1)) {
    throw new RangeError("A pool needs at least 1 Web Worker with at least 1 slot");
  }
  const grace = options.leakGraceMs;
  // A Worker checked its leakedThreadsGrace (seconds) when constructed: this is for a pool
  // made directly (a grace <= 0 would count every terminated thread as leaked at once).
  if (grace !== undefined && !(grace > 0 && Number.isFinite(grace))) {
    throw new RangeError(`leakGraceMs needs a number of ms > 0, got ${grace}`);
  }
  const workers = groupCount(options) * options.size;
  if (workers > MAX_POOL_SIZE) {
    throw new RangeError(
      `A pool of ${workers} Web Workers is refused: it keeps at most ` +
        `${MAX_POOL_SIZE} Web Workers (more tasks at once come from their slots, --prefetch)`,
    );
  }
}

/**
 * Check a resize of a pool's default group by `delta` Web Workers.
 *
 * @example
 * ```ts
 * checkResize(-2, 2, 2); // throws RangeError: the group keeps at least 1
 * ```
 *
 * @param delta Web Workers to add (positive) or retire (negative)
 * @param current Web Workers the default group keeps now
 * @param concurrency Web Workers the pool keeps now, across its groups
 * @throws {RangeError} for a `delta` that is not whole, a default group that would keep fewer
 *   than 1 Web Worker, or a pool that would keep more than {@link MAX_POOL_SIZE}
 */
export function checkResize(delta: number, current: number, concurrency: number): void {
  if (!Number.isInteger(delta)) {
    throw new RangeError(`The pool grows by whole Web Workers, not ${delta}`);
  }
  if (delta > 0 && concurrency + delta > MAX_POOL_SIZE) {
    throw new RangeError(
      `Cannot grow the pool by ${delta}: it has ${concurrency} Web Worker(s) and keeps at ` +
        `most ${MAX_POOL_SIZE} Web Workers`,
    );
  }
  if (current + delta < 1) {
    throw new RangeError(
      `Cannot shrink the pool by ${-delta}: it has ${current} Web Worker(s) and keeps at least 1`,
    );
  }
}
