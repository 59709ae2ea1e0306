/**
 * What the `threads` pool (`thread_pool.ts`) is configured with: Web
 * Workers per sandbox, their slots, the app module, recycling.
 *
 * @module
 */

import type { CeleryOptions } from "../client/config.ts";
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
