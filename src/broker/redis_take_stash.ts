/**
 * What the take script of a Redis early hand-out took beside the early
 * delivery (redis_take.ts): the next take returns it, or, when the take that
 * sent the script ended before it replied, it goes back to its queues.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Delivery } from "./port.ts";
import { closeWait } from "./sleep.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/**
 * Deliveries a take script recorded beside an early delivery, not handed
 * out yet, and the putting back of them.
 *
 * @example
 * ```ts ignore
 * import { TakeStash } from "./redis_take_stash.ts";
 * const stash = new TakeStash((left) => settler.requeue(left));
 * stash.push(got);
 * const next = stash.take(10);
 * const left = await stash.leftOver();
 * ```
 */
export class TakeStash {
  /** What that take took beside the early delivery: the take that sent it returns it. */
  readonly #items: Delivery[] = [];
  /** Puts recorded deliveries back at the front of their queues (the broker's requeue). */
  readonly #putBack: (deliveries: Delivery[]) => Promise<void>;
  /** Putting back the stash of a take aborted before its take script replied. */
  #puttingBack: Promise<void> | null = null;

  /**
   * @param putBack puts recorded deliveries back at the front of their queues, in the order given
   */
  constructor(putBack: (deliveries: Delivery[]) => Promise<void>) {
    this.#putBack = putBack;
  }

  /** How many deliveries are stashed. */
  get size(): number {
    return this.#items.length;
  }

  /**
   * Stash deliveries a take script took beside its early delivery.
   *
   * @param deliveries them, in the order taken
   */
  push(deliveries: readonly Delivery[]): void {
    for (const d of deliveries) this.#items.push(d);
  }

  /**
   * Take stashed deliveries out, oldest first.
   *
   * @param max how many at most (default: all)
   * @returns them; the stash keeps the rest
   */
  take(max?: number): Delivery[] {
    return max === undefined ? this.#items.splice(0) : this.#items.splice(0, max);
  }

  /**
   * A take that sent the take script of an early hand-out ended before the
   * script replied (its signal aborted: a Redis Cluster take over several
   * queues ends the takes of the others once one returns). What the script
   * takes beside the early delivery goes back to its queues once recorded:
   * held until this taker's next take, which may not come for long (the
   * worker holds its max), nothing would renew its lease, and once restored
   * and run elsewhere it would be handed out here again.
   *
   * @param recording the take script's record, or null when none is under way
   */
  putBackAfter(recording: Promise<void> | null): void {
    if (recording === null || this.#puttingBack !== null) return;
    this.#puttingBack = recording.then(async () => {
      const left = this.#items.splice(0);
      if (left.length > 0) await this.#putBack(left);
    }).catch((err) =>
      log.warn("Could not put back taken message(s): {error}", { error: (err as Error).message })
    ).finally(() => this.#puttingBack = null);
  }

  /**
   * Wait for a put-back under way (CLOSE_WAIT_MS at most: a put-back
   * retrying ends as the broker closes), then take out what is left.
   *
   * @returns the deliveries stashed; none are kept afterwards
   */
  async leftOver(): Promise<Delivery[]> {
    if (this.#puttingBack) await closeWait(this.#puttingBack);
    return this.#items.splice(0);
  }
}
