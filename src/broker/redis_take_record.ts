/**
 * Recording a Redis early hand-out (redis_take.ts): the take script of a
 * delivery handed out before it replied, run again with the same id while
 * Redis is unreachable, until it replies, the outage limit passes (settling
 * the delivery fails then) or the broker closes.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { sleep } from "./sleep.ts";
import type { Early, EarlyDeliveries } from "./redis_early.ts";
import type { TakeScript } from "./redis_take_script.ts";
import type { TakeStash } from "./redis_take_stash.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/**
 * How often a take retries while Redis is unreachable, in milliseconds.
 *
 * @example
 * ```ts
 * import { RECONNECT_POLL_MS } from "./redis_take_record.ts";
 * RECONNECT_POLL_MS; // 100
 * ```
 */
export const RECONNECT_POLL_MS = 100;

/**
 * What recording an early hand-out needs of its taker.
 *
 * @example
 * ```ts ignore
 * const taker: RecordTaker = {
 *   script, early, stash, closing, limitMs: outageLimit * 1000,
 *   rotate: () => rotation++,
 *   emptied: (claimedBefore) => emptyAt = claimedBefore,
 * };
 * ```
 */
export interface RecordTaker {
  /** The taker's take script. */
  readonly script: TakeScript;
  /** The taker's deliveries handed out before their take script replied. */
  readonly early: EarlyDeliveries;
  /** Where what the take script took beside the early delivery goes, for the next take. */
  readonly stash: TakeStash;
  /** Aborted when the broker closes: the record gives up then. */
  readonly closing: AbortSignal;
  /** Milliseconds the take script is retried while Redis is unreachable. */
  readonly limitMs: number;
  /** The take script replied: the next take starts from the next queue. */
  rotate(): void;
  /** Every list was found empty: the next take waits first. */
  emptied(claimedBefore: number): void;
}

/**
 * Run the take script of an early hand-out, and again with the same id
 * (see `TakeScript.run`) while it fails, until it replies or the
 * broker closes: settling the delivery waits for it.
 *
 * A record of the claim list alone (`lists` empty) asks behind it whether
 * every list of `probe` (the wait's) is empty; when they are, the next
 * take waits at once, as after a take that emptied them all, instead of
 * first running a take script that finds nothing (a sequential round
 * trip's: one script call and one Redis round trip of the worker's main
 * thread fewer per task, its wait sent that much sooner).
 *
 * @example
 * ```ts ignore
 * import { recordTake } from "./redis_take_record.ts";
 * await recordTake(taker, early, [], 2, "celery", claimedBefore, ["celery"]);
 * ```
 *
 * @param taker the taker the early hand-out is of
 * @param early the early hand-out
 * @param lists the lists the take script takes from beside the claim list (none: it alone)
 * @param max how many messages it takes at most
 * @param first the list whose claim list is read first (the early delivery's)
 * @param claimedBefore the watchers' claims counted before the hand-out
 * @param probe the lists asked about behind a record of the claim list alone; default none
 * @returns once recorded, given up on (past the outage limit) or the broker closed
 */
export async function recordTake(
  taker: RecordTaker,
  early: Early,
  lists: string[],
  max: number,
  first: string,
  claimedBefore: number,
  probe: readonly string[] = [],
): Promise<void> {
  const script = taker.script;
  let failed = false;
  const until = Date.now() + taker.limitMs;
  // At least once: a broker closing sends it too, and puts back what it took beside.
  do {
    const taking = script.run(lists, max, first);
    const empty = lists.length === 0 ? script.emptyBehind(probe) : null;
    if (early.seq < 0) early.seq = script.seq;
    try {
      const [got, taken] = await taking;
      taker.rotate();
      // A take of claim lists alone leaves the queues as they were (see RedisTaker.take()),
      // unless they were found empty right behind it.
      if (taken < max && lists.length > 0) taker.emptied(claimedBefore);
      else if (empty !== null && await empty) taker.emptied(claimedBefore);
      taker.stash.push(got);
      return;
    } catch (err) {
      if (Date.now() + RECONNECT_POLL_MS > until) {
        // Past the outage limit: settling the delivery fails (as an acknowledgement retried
        // that long does) instead of waiting until the broker closes, which a worker's
        // shutdown does only after its settling. Nothing is lost: the message is in this
        // consumer's claim list (taken again, or returned at close) or, when the script ran
        // unanswered, in `unacked` (the next take hands it over; else the visibility timeout).
        log.warn("Could not record a take within the outage limit ({error})", {
          error: (err as Error).message,
        });
        taker.early.giveUp(early, err as Error);
        return;
      }
      if (!failed) {
        failed = true;
        log.warn("Cannot record a take ({error}); trying again every {ms} ms", {
          error: (err as Error).message,
          ms: RECONNECT_POLL_MS,
        });
      }
      await sleep(RECONNECT_POLL_MS, taker.closing);
    }
  } while (!taker.closing.aborted);
}
