/**
 * Limits that keep a worker bounded when it scales out: how many ETA
 * tasks it holds (Celery 5.6's `worker_eta_task_limit`), and how long a
 * cold shutdown lets running tasks finish before requeueing them (Celery
 * 5.5's `worker_soft_shutdown_timeout`). Pure rules; the worker applies
 * them in its take loop and in `terminate()`.
 *
 * @module
 */

/**
 * How many messages the next take may ask for: the free slots, and no more
 * than the ETA tasks the worker may still hold (each taken message may be
 * one). 0 means: do not take now.
 *
 * @example
 * ```ts
 * import { takeAllowance } from "./scale_limits.ts";
 * takeAllowance(8, 0, undefined); // 8
 * takeAllowance(8, 95, 100); // 5
 * takeAllowance(8, 100, 100); // 0: leave further tasks on the broker
 * ```
 *
 * @param free free execution slots
 * @param etaHeld ETA tasks held now
 * @param etaTaskLimit the most ETA tasks to hold; undefined for no limit
 * @returns how many to take
 */
export function takeAllowance(free: number, etaHeld: number, etaTaskLimit?: number): number {
  if (etaTaskLimit === undefined) return Math.max(0, free);
  return Math.max(0, Math.min(free, etaTaskLimit - etaHeld));
}

/**
 * Wait until nothing runs any more or `timeoutMs` has passed: the soft
 * phase of a cold shutdown, during which running tasks may still finish
 * (and be acknowledged) before the rest are requeued.
 *
 * @example
 * ```ts ignore
 * const finished = await softShutdown(() => running.size, () => sleep(), 30_000);
 * ```
 *
 * @param running how many tasks run now
 * @param changed resolves when something may have finished
 * @param timeoutMs the soft shutdown timeout
 * @returns true when every task finished in time
 */
export async function softShutdown(
  running: () => number,
  changed: () => Promise<void>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (running() > 0) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      changed(),
      new Promise<void>((r) => timer = setTimeout(r, Math.min(left, 1000))),
    ]);
    clearTimeout(timer);
  }
  return true;
}
