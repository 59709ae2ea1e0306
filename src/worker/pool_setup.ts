/**
 * Choosing and sizing a worker's pool from its options: the inline pool, or
 * Web Workers grouped by permission sandbox.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import { InlinePool } from "./inline_pool.ts";
import type { Pool, PoolEvents } from "./pool.ts";
import { ThreadPool } from "./thread_pool.ts";
import { planSandboxes, type Sandbox, sandboxedTasks } from "./sandboxes.ts";
import type { WorkerOptions } from "./worker_options.ts";
import { DEFAULT_PREFETCH_MAX } from "./prefetch_window.ts";

/** Task slots of the inline pool, in total, when `prefetch` is not given. */
const INLINE_POOL_SLOTS = 100;

/**
 * Task slots per Web Worker (the inline pool: in total) that a worker's
 * options give: `prefetch`, else {@link DEFAULT_PREFETCH_MAX} (inline: 100).
 * The pool has as many; they are also the prefetch window's ceiling.
 *
 * @example
 * ```ts
 * import { poolSlots } from "./pool_setup.ts";
 * poolSlots({}); // 64
 * poolSlots({ pool: "inline" }); // 100
 * poolSlots({ pool: "inline", prefetch: 8 }); // 8
 * ```
 *
 * @param o the worker's pool and prefetch options
 * @returns the slots
 */
export function poolSlots(o: Pick<WorkerOptions, "pool" | "prefetch">): number {
  return o.prefetch ?? (o.pool === "inline" ? INLINE_POOL_SLOTS : DEFAULT_PREFETCH_MAX);
}

/**
 * Build (not start) the pool a worker's options ask for.
 *
 * @param app the app
 * @param o the worker's options
 * @param events where the pool reports
 * @returns the pool and the permission sandboxes planned for the tasks
 * @throws {TypeError} when tasks have sandboxes, or autoscale is asked for, and the pool is inline
 */
export function createPool(
  app: Celery,
  o: WorkerOptions,
  events: PoolEvents,
): { pool: Pool; sandboxes: Sandbox[] } {
  const sandboxes = planSandboxes(app.tasks.values(), o.taskPermissions);
  if ((o.pool ?? "threads") === "inline") {
    if (o.autoscale) {
      throw new TypeError(
        "Autoscale grows and shrinks Web Workers, which the inline pool has none of: " +
          "use the threads pool",
      );
    }
    const sandboxed = sandboxedTasks(sandboxes);
    if (sandboxed.length) {
      throw new TypeError(
        `Tasks ${sandboxed.join(", ")} have permission sandboxes, ` +
          `which the inline pool cannot enforce: use the threads pool`,
      );
    }
    const pool = new InlinePool(app, poolSlots(o), events, o.maxDecompressedSize);
    return { pool, sandboxes };
  }
  const pool = new ThreadPool({
    // Autoscaling starts with the minimum, as Celery's pool does; a pool keeps at least 1.
    size: o.autoscale
      ? Math.max(1, o.autoscale.min ?? 0)
      : o.concurrency ?? navigator.hardwareConcurrency,
    slots: poolSlots(o),
    module: o.appModule!,
    exportName: o.appExport,
    sandboxes,
    recycle: { maxTasksPerChild: o.maxTasksPerChild, maxMemoryPerChild: o.maxMemoryPerChild },
    config: app.config,
    maxDecompressedSize: o.maxDecompressedSize,
    leakGraceMs: o.leakedThreadsGrace === undefined ? undefined : o.leakedThreadsGrace * 1000,
  }, events);
  return { pool, sandboxes };
}
