/**
 * Lamport clock, as kombu keeps one per process: every event and
 * remote-control message carries it, and receivers order by it.
 *
 * @module
 */

/**
 * A Lamport logical clock.
 *
 * @example
 * ```ts
 * import { LamportClock } from "@celeriac/celeriac/protocol";
 * const clock = new LamportClock();
 * clock.forward(); // 1: a message of ours
 * clock.adjust(41); // 42: a message of someone else's, with clock 41
 * clock.value; // 42
 * ```
 */
export class LamportClock {
  #value = 0;

  /** The current value. */
  get value(): number {
    return this.#value;
  }

  /**
   * Advance for a message we send.
   *
   * @returns the new value, to put in the message
   */
  forward(): number {
    return ++this.#value;
  }

  /**
   * Move past a value received from another process.
   *
   * @param other the received clock (ignored unless a number up to 2^53: a clock moved past
   *   that could no longer advance, so one message would stop it for good)
   * @returns the new value
   */
  adjust(other: unknown): number {
    const n = Math.floor(Number(other));
    if (Number.isSafeInteger(n)) this.#value = Math.max(this.#value, n);
    return ++this.#value;
  }
}
