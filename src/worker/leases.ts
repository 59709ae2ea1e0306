/**
 * Lease renewal: on brokers with a visibility timeout (Redis, KV), the
 * worker renews the lease of every unacknowledged delivery it holds, so
 * none is redelivered to another worker while it waits or runs.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Delivery } from "../broker/port.ts";
import { cannotWrite, OutageWatch } from "../broker/outage.ts";
import type { WorkerState } from "./worker_state.ts";

const log = getLogger(["celeriac", "worker"]);

/** At most one warning about slow renewal rounds per this many milliseconds. */
const SLOW_WARNING_EVERY_MS = 60_000;
/** Renewals a round still under way makes skip before it is logged as hung (a visibility timeout). */
const HUNG_AFTER_INTERVALS = 4;

/**
 * Renew, every quarter of the visibility timeout (200 ms to 60 s), the
 * leases of the deliveries held by the intake, of the running tasks not yet
 * acknowledged (or whose early acknowledgement is not written yet), and of the ended ones whose settlement waits (a result
 * backend that is down), so that none is redelivered and run again.
 *
 * A round still under way when the next is due makes that one skip (rounds
 * never overlap), and a round slower than the interval is logged as a
 * warning (at most once a minute, with how many were slow). A round still
 * under way after 4 intervals (a visibility timeout) is logged as a warning
 * then, once, so that a hang is visible before it ends. Deliveries the
 * broker reports gone (restored to their queue after their lease ran out)
 * go to `lost`, so that the intake drops its copy instead of running the
 * task as well as the redelivered message.
 *
 * @example
 * ```ts ignore
 * const timer = renewLeases(state, () => intake.holding(), (gone) => intake.dropLost(gone));
 * clearInterval(timer); // on shutdown
 * ```
 *
 * @param s the worker's state (its broker and running tasks)
 * @param holding the deliveries the intake holds (ETA, rate-limited)
 * @param lost called with the deliveries whose lease was already gone
 * @returns the timer, or undefined when the broker has no leases (AMQP)
 */
export function renewLeases(
  s: WorkerState,
  holding: () => Delivery[],
  lost: (gone: Delivery[]) => void,
): ReturnType<typeof setInterval> | undefined {
  const visibility = s.broker.visibilityTimeout;
  if (visibility === null) return undefined;
  const every = Math.min(60_000, Math.max(200, visibility / 4));
  let busy = false;
  let slow = 0;
  let warned = -Infinity;
  /** The outages the round under way waits out (a KV file on a full disk, a server down). */
  let waits = new OutageWatch();
  const round = async (mine: Delivery[]) => {
    const started = performance.now();
    waits = new OutageWatch();
    try {
      const gone = await waits.run(() => s.broker.extend(mine));
      if (gone.length > 0) lost(gone);
    } catch (err) {
      log.warn("Cannot renew {n} lease(s): {error}", {
        n: mine.length,
        error: (err as Error).message,
      });
    }
    const took = performance.now() - started;
    if (took <= every) return;
    slow++;
    if (performance.now() - warned < SLOW_WARNING_EVERY_MS) return;
    const err = waits.lastError;
    if (cannotWrite(err)) {
      log.warn(
        "Renewing {n} lease(s) took {took} ms, longer than the {every} ms between renewals ({slow} slow round(s) since the last warning), as the broker cannot write ({error}): leases may run out and their tasks be redelivered",
        { n: mine.length, took: Math.round(took), every, slow, error: err.message },
      );
    } else {
      log.warn(
        "Renewing {n} lease(s) took {took} ms, longer than the {every} ms between renewals ({slow} slow round(s) since the last warning): leases may run out and their tasks be redelivered. If the broker was not failing over or unreachable meanwhile (its warnings would say so), raise the visibility timeout or hold fewer ETA tasks per worker",
        { n: mine.length, took: Math.round(took), every, slow },
      );
    }
    warned = performance.now();
    slow = 0;
  };
  let skipped = 0;
  return setInterval(() => {
    if (busy) {
      // Once per round: a round that never ends stops all renewal, since the next never starts.
      if (++skipped === HUNG_AFTER_INTERVALS) hung(skipped * every, skipped, waits.lastError);
      return;
    }
    skipped = 0;
    const mine = holding();
    for (const r of s.running.values()) {
      // Not acknowledged (late ack), or its early acknowledgement not written yet.
      if (!r.ackEnded) mine.push(r.delivery);
    }
    for (const d of s.unsettled) mine.push(d);
    if (mine.length === 0) return;
    busy = true;
    round(mine).finally(() => busy = false);
  }, every);
}

/** A round has been under way for `ms`; `err` is what it waits out, if anything. */
function hung(ms: number, skipped: number, err: Error | null): void {
  const what = "A lease renewal round has been running for {ms} ms ({skipped} renewals " +
    "skipped): no lease is renewed until it ends, so tasks may be redelivered";
  if (cannotWrite(err)) {
    log.warn(`${what}; the broker cannot write: {error}`, { ms, skipped, error: err.message });
  } else {
    log.warn(`${what}; check the broker's connection`, { ms, skipped });
  }
}
