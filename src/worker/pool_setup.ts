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
import { planSandboxes, type Sandbox } from "./sandboxes.ts";
import type { WorkerOptions } from "./worker_options.ts";
import { DEFAULT_PREFETCH_MAX } from "./prefetch_window.ts";

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
    const sandboxed = sandboxes.filter((s) => s.permissions !== "inherit");
    if (sandboxed.length) {
      throw new TypeError(
        `Tasks ${sandboxed.flatMap((s) => s.tasks).join(", ")} have permission sandboxes, ` +
          `which the inline pool cannot enforce: use the threads pool`,
      );
    }
    return { pool: new InlinePool(app, o.prefetch ?? 100, events), sandboxes };
  }
  const pool = new ThreadPool({
    // Autoscaling starts with the minimum, as Celery's pool does; a pool keeps at least 1.
    size: o.autoscale
      ? Math.max(1, o.autoscale.min ?? 0)
      : o.concurrency ?? navigator.hardwareConcurrency,
    slots: o.prefetch ?? DEFAULT_PREFETCH_MAX,
    module: o.appModule!,
    exportName: o.appExport,
    sandboxes,
    recycle: { maxTasksPerChild: o.maxTasksPerChild, maxMemoryPerChild: o.maxMemoryPerChild },
    config: app.config,
  }, events);
  return { pool, sandboxes };
}
