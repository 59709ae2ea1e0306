/**
 * The take script of a Redis early hand-out while it waits to be sent
 * (redis_take.ts): the send itself, the claim it records, and the timer that
 * sends it at the latest {@link RECORD_WITHIN_MS} after the hand-out.
 *
 * @module
 */

import type { Early } from "./redis_early.ts";

/**
 * Milliseconds after an early hand-out by which its take script is sent
 * even if neither the next take nor a settling of the delivery sent it: a
 * held (ETA, rate limit) or long task must not leave its message in the
 * claim list, where no wait renews the claim and, once the claim lease has
 * passed, any worker's sweep puts it back in its queue for another to run.
 *
 * @example
 * ```ts
 * import { RECORD_WITHIN_MS } from "./redis_deferred_take.ts";
 * RECORD_WITHIN_MS; // 200
 * ```
 */
export const RECORD_WITHIN_MS = 200;

/**
 * The lone early hand-out of a taker whose take script has not been sent:
 * a task acknowledged as it starts, on an idle worker (a sequential round
 * trip's), is acknowledged straight from the consumer's claim list, with an
 * `LREM` of its very element, instead of recorded in `unacked` by the take
 * script and removed again right behind it (two scripts that cost Redis ~80
 * µs per round trip, at the moment the task's result store queues behind
 * them). The claim list is the consumer's own and no take script has read it
 * since the wait (the next take sends the waiting one first, and the
 * acknowledgement then goes behind it): the element is there unless a sweep
 * returned it to its queue, for another consumer. An `LREM` that removes
 * nothing (or goes unanswered) is followed by the take script, which decides
 * from the stored bytes.
 *
 * @example
 * ```ts ignore
 * const claim: DeferredClaim = { early, list: "celery", lists: ["celery"], claimedBefore: 3 };
 * ```
 */
export interface DeferredClaim {
  /** The early delivery. */
  readonly early: Early;
  /** The list its wait claimed it from. */
  readonly list: string;
  /** The wait's lists. */
  readonly lists: string[];
  /** Claims counted (over every watcher) when it was handed out. */
  readonly claimedBefore: number;
}

/**
 * Sends a take script given the max of the take that sends it, or null when
 * a settling, the timer or closing sends it.
 *
 * @example
 * ```ts ignore
 * const send: SendTake = (next) => record(next ?? 2);
 * ```
 */
export type SendTake = (max: number | null) => Promise<void>;

/**
 * The take script of an early hand-out before it is sent, and the timer
 * that has it sent once it has waited {@link RECORD_WITHIN_MS} if nothing
 * else did. The timer is armed only when none is: one timer serves every
 * hand-out within its period (creating and clearing one per hand-out cost an
 * idle worker's round trip a few µs before its task was posted).
 *
 * @example
 * ```ts ignore
 * import { DeferredTake } from "./redis_deferred_take.ts";
 * const deferred = new DeferredTake(() => sendDeferred());
 * deferred.defer((next) => record(next), { early, list, lists, claimedBefore });
 * const send = deferred.take(); // the script to send now, or null
 * deferred.stop();
 * ```
 */
export class DeferredTake {
  /** The take script before it is sent. */
  #send: SendTake | null = null;
  /** The early hand-out of that take script, while it waits. */
  #claim: DeferredClaim | null = null;
  /** When that take script was deferred (`performance.now()`), while it waits. */
  #at = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Sends the waiting take script (the taker's), called by the timer. */
  readonly #onDue: () => void;

  /**
   * @param onDue called once a take script has waited {@link RECORD_WITHIN_MS}:
   *   it takes the script ({@link DeferredTake.take}) and sends it
   */
  constructor(onDue: () => void) {
    this.#onDue = onDue;
  }

  /** The early hand-out whose take script waits, or null. */
  get claim(): DeferredClaim | null {
    return this.#claim;
  }

  /**
   * Defer the take script of an early hand-out, arming the timer unless it is.
   *
   * @param send sends the take script
   * @param claim the early hand-out it records
   */
  defer(send: SendTake, claim: DeferredClaim): void {
    this.#send = send;
    this.#claim = claim;
    this.#at = performance.now();
    this.#timer ??= setTimeout(() => this.#onTimer(), RECORD_WITHIN_MS);
  }

  /**
   * The waiting take script, which the caller sends (or drops: its early
   * hand-out was acknowledged otherwise); nothing waits afterwards.
   *
   * @returns it, or null when none waits
   */
  take(): SendTake | null {
    const send = this.#send;
    this.#send = null;
    this.#claim = null;
    return send;
  }

  /** Disarm the timer (the taker closes). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The timer fired: have the take script sent if it has waited
   * {@link RECORD_WITHIN_MS}, else wait for the rest of that time; with
   * nothing deferred, the timer is left unarmed until the next hand-out.
   */
  #onTimer(): void {
    this.#timer = undefined;
    if (this.#send === null) return;
    const left = this.#at + RECORD_WITHIN_MS - performance.now();
    if (left > 1) this.#timer = setTimeout(() => this.#onTimer(), left);
    else this.#onDue();
  }
}
