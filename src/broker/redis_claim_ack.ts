/**
 * Acknowledging a Redis early hand-out straight from its claim list
 * (redis_take.ts): an `LREM` of its element instead of its take script and an
 * acknowledgement behind it, the take script going after all when the `LREM`
 * removes nothing or goes unanswered.
 *
 * @module
 */

import type { Delivery } from "./port.ts";
import type { Early, EarlyDeliveries } from "./redis_early.ts";
import type { DeferredClaim } from "./redis_deferred_take.ts";
import type { RespScripts } from "./resp_scripts.ts";

/**
 * What acknowledging a claim needs of its taker.
 *
 * @example
 * ```ts ignore
 * const taker: ClaimAckTaker = {
 *   early,
 *   claimKey: (list) => scope.k(claimList(watchers.id, list)),
 *   emptyBehind: (lists) => script.emptyBehind(lists),
 *   emptied: (claimedBefore) => emptyAt = claimedBefore,
 *   record: (early, list, claimedBefore, lists) => record(early, [], 2, list, claimedBefore, lists),
 * };
 * ```
 */
export interface ClaimAckTaker {
  /** The taker's deliveries handed out before their take script replied. */
  readonly early: EarlyDeliveries;
  /** The key of the taker's claim list of `list`. */
  claimKey(list: string): string;
  /** Asks, right behind what was sent, whether every list of `lists` is empty (see `TakeScript.emptyBehind`). */
  emptyBehind(lists: readonly string[]): Promise<boolean> | null;
  /** Every list of the wait was found empty: the next take waits first. */
  emptied(claimedBefore: number): void;
  /** Runs the take script of the claim list alone (asking whether `lists` are empty behind it). */
  record(
    early: Early,
    list: string,
    claimedBefore: number,
    lists: readonly string[],
  ): Promise<void>;
}

/**
 * Acknowledge the lone early hand-out whose take script waits (see
 * {@link DeferredClaim}) with an `LREM` of its element from its claim
 * list, whether every list of the wait is empty asked right behind it (see
 * `recordTake`, redis_take_record.ts). When the `LREM` removes nothing, or fails
 * (it may or may not have run), the take script goes after all: it records
 * the element, acknowledged the usual way then, or finds it gone: removed
 * by an `LREM` that ran unanswered, acknowledged at intake then (see
 * `EarlyDeliveries.lremUnanswered`). The caller has taken the waiting take
 * script out of its `DeferredTake`.
 *
 * @param taker the taker the claim is of
 * @param resp the connection the `LREM` goes on
 * @param claim the lone early hand-out
 * @param deliveries deliveries to acknowledge, the early one among them
 * @returns `done`, settled once the `LREM` (and the take script, if it went) replied; `left`,
 *   once it did, the deliveries left to acknowledge the usual way
 *
 * @example
 * ```ts ignore
 * import { ackClaim } from "./redis_claim_ack.ts";
 * const { done, left } = ackClaim(taker, resp, claim, deliveries);
 * await done;
 * left(); // deliveries to acknowledge the usual way
 * ```
 */
export function ackClaim(
  taker: ClaimAckTaker,
  resp: RespScripts,
  claim: DeferredClaim,
  deliveries: readonly Delivery[],
): { done: Promise<void>; left: () => readonly Delivery[] } {
  const { early, list, lists, claimedBefore } = claim;
  const removing = resp.command(["LREM", taker.claimKey(list), "-1", early.raw], Number);
  const empty = taker.emptyBehind(lists);
  let left = deliveries.filter((d) => d !== early.delivery);
  const done = (async () => {
    // null: unanswered, it may have run.
    const removed = await removing.catch(() => null);
    if (removed === 1) {
      taker.early.ackedClaim(early);
      if (empty !== null && await empty) taker.emptied(claimedBefore);
      return;
    }
    left = [...deliveries];
    if (removed === null) taker.early.lremUnanswered(early);
    await taker.record(early, list, claimedBefore, lists);
  })();
  return { done, left: () => left };
}
