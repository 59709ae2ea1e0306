/**
 * Lease renewal: on brokers with a visibility timeout (Redis, KV), the
 * worker renews the lease of every unacknowledged delivery it holds, so
 * none is redelivered to another worker while it waits or runs.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Delivery } from "../broker/port.ts";
import type { WorkerState } from "./worker_state.ts";

const log = getLogger(["celeriac", "worker"]);

/**
 * Renew, every quarter of the visibility timeout (200 ms to 60 s), the
 * leases of the deliveries held by the intake, of the running tasks not yet
 * acknowledged, and of the ended ones whose settlement waits (a result
 * backend that is down), so that none is redelivered and run again.
 *
 * @example
 * ```ts ignore
 * const timer = renewLeases(state, () => intake.holding());
 * clearInterval(timer); // on shutdown
 * ```
 *
 * @param s the worker's state (its broker and running tasks)
 * @param holding the deliveries the intake holds (ETA, rate-limited)
 * @returns the timer, or undefined when the broker has no leases (AMQP)
 */
export function renewLeases(
  s: WorkerState,
  holding: () => Delivery[],
): ReturnType<typeof setInterval> | undefined {
  const visibility = s.broker.visibilityTimeout;
  if (visibility === null) return undefined;
  const every = Math.min(60_000, Math.max(200, visibility / 4));
  return setInterval(() => {
    const mine = holding();
    for (const r of s.running.values()) if (!r.acked) mine.push(r.delivery);
    for (const d of s.unsettled) mine.push(d);
    if (mine.length === 0) return;
    s.broker.extend(mine).catch((err) =>
      log.warn("Cannot renew {n} lease(s): {error}", {
        n: mine.length,
        error: (err as Error).message,
      })
    );
  }, every);
}
