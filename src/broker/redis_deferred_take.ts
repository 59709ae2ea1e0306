/**
 * The take script of a Redis early hand-out while it waits to be sent
 * (redis_take.ts): the send itself, the claim it records, and the timer that
 * sends it at the latest {@link RECORD_WITHIN_MS} after the hand-out.
 *
 * @module
 */

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
 * deferred.defer((next) => record(next));
 * const send = deferred.take(); // the script to send now, or null
 * deferred.stop();
 * ```
 */
export class DeferredTake {
  /** The take script before it is sent. */
  #send: SendTake | null = null;
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

  /**
   * Defer the take script of an early hand-out, arming the timer unless it is.
   *
   * @param send sends the take script
   */
  defer(send: SendTake): void {
    this.#send = send;
    this.#at = performance.now();
    this.#timer ??= setTimeout(() => this.#onTimer(), RECORD_WITHIN_MS);
  }

  /**
   * The waiting take script, which the caller sends; nothing waits
   * afterwards.
   *
   * @returns it, or null when none waits
   */
  take(): SendTake | null {
    const send = this.#send;
    this.#send = null;
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
