/**
 * The worker's counters, kept by a lifecycle subscriber.
 *
 * @module
 */

import type { LifecycleEvent } from "./lifecycle.ts";

/**
 * Counters of what the worker did.
 *
 * @example Counting what a worker did
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { Worker, type WorkerStats } from "@celeriac/celeriac/worker";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const worker = new Worker({ app, pool: "inline" });
 * await worker.start();
 * await (await add.delay(2, 3)).get({ timeout: 5000 }); // 5
 * await worker.stop();
 * const stats: WorkerStats = worker.stats;
 * console.log(`${stats.succeeded} of ${stats.received} succeeded, ${stats.failed} failed`);
 * await app.close();
 * ```
 */
export interface WorkerStats {
  /** Task messages received. */
  received: number;
  /** Tasks that returned. */
  succeeded: number;
  /** Tasks that threw (or whose Web Worker died). */
  failed: number;
  /**
   * Messages parked: malformed, unregistered, refused content, poison
   * (`maxDeliveries`), or not settled (a worker error, a retry not
   * published, a result not written within `outageRetryLimit`).
   */
  parked: number;
  /** Tasks not run because they expired. */
  expired: number;
  /** Tasks that asked to be retried (`ctx.retry()`, `autoretryFor`). */
  retried: number;
  /** Tasks not run (or stopped) because they were revoked. */
  revoked: number;
}

/**
 * Worker counters all at zero.
 *
 * @example
 * ```ts
 * import { Lifecycle } from "@celeriac/celeriac/worker";
 * const lifecycle = new Lifecycle();
 * const stats = zeroStats();
 * lifecycle.subscribe(countStats(stats));
 * ```
 */
export function zeroStats(): WorkerStats {
  return { received: 0, succeeded: 0, failed: 0, parked: 0, expired: 0, retried: 0, revoked: 0 };
}

/**
 * A lifecycle subscriber that counts into `stats`.
 *
 * @example
 * ```ts
 * import { countStats, Lifecycle, type WorkerStats } from "@celeriac/celeriac/worker";
 * const stats: WorkerStats = {
 *   received: 0, succeeded: 0, failed: 0, parked: 0, expired: 0, retried: 0, revoked: 0,
 * };
 * new Lifecycle().subscribe(countStats(stats));
 * ```
 *
 * @param stats the counters to update
 * @returns the subscriber
 */
export function countStats(stats: WorkerStats): (event: LifecycleEvent) => void {
  return (e) => {
    switch (e.type) {
      case "received":
        stats.received++;
        break;
      case "succeeded":
        stats.succeeded++;
        break;
      case "failed":
        stats.failed++;
        break;
      case "retried":
        stats.retried++;
        break;
      case "revoked":
        if (e.atIntake) stats.received++;
        if (e.reason === "expired") stats.expired++;
        else stats.revoked++;
        break;
      case "rejected":
        if (e.atIntake) stats.received++;
        stats.parked++;
        break;
    }
  };
}
