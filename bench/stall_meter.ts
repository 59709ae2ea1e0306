/**
 * The event loop's stalls, as a repeating timer's lateness (benchmarks of long publishes).
 *
 * @module
 */

const TICK_MS = 10;

/**
 * Records how late a repeating 10 ms timer fires: the event loop's stalls.
 *
 * @example
 * ```ts ignore
 * const meter = new StallMeter();
 * await work();
 * meter.take(); // the longest stall, ms
 * meter.stop();
 * ```
 */
export class StallMeter {
  #last = performance.now();
  #timer: ReturnType<typeof setInterval>;
  longest = 0;

  constructor() {
    this.#timer = setInterval(() => {
      const now = performance.now();
      this.longest = Math.max(this.longest, now - this.#last - TICK_MS);
      this.#last = now;
    }, TICK_MS);
  }

  /** The longest stall so far, and start over. */
  take(): number {
    const now = performance.now();
    const longest = Math.max(this.longest, now - this.#last - TICK_MS);
    this.longest = 0;
    this.#last = now;
    return longest;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
