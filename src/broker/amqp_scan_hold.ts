/**
 * What this broker's scan of `celeriac.parked` under way holds, for a
 * count made beside it. A scan takes each message it reads out of the
 * queue (`basic.get`) until its channel closes; a count that reads the
 * queue's depth meanwhile adds those back. The scan's reads and its
 * channel's close take turns with the count's depth read, so the depth and
 * the number held are of the same moment: a listing of 300 parked counts
 * 300 all along (before: 300, 299, ... 0 as it read them).
 *
 * @module
 */

/**
 * The messages held by this broker's scans (they run one at a time), and
 * the turns their reads take with a count's depth read.
 *
 * @example
 * ```ts ignore
 * import { ScanHold } from "./amqp_scan_hold.ts";
 * const hold = new ScanHold();
 * const raw = await hold.read(() => channel.get("celeriac.parked", { noAck: false }));
 * const total = await hold.count(async () => (await other.checkQueue("celeriac.parked")).messageCount);
 * await hold.release(() => channel.close());
 * ```
 */
export class ScanHold {
  /** Messages read and neither acknowledged nor given back yet. */
  #held = 0;
  #turn: Promise<unknown> = Promise.resolve();

  /** Run `fn` once the step before it is over; the next one waits for it. */
  #step<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(fn);
    this.#turn = run.catch(() => {});
    return run;
  }

  /**
   * Read one message (a `basic.get`, `false` when the queue is empty) in
   * its turn; a message read is held.
   *
   * @param get the read
   * @returns what it read
   */
  read<T>(get: () => Promise<T | false>): Promise<T | false> {
    return this.#step(async () => {
      const got = await get();
      if (got !== false) this.#held++;
      return got;
    });
  }

  /** A message held was acknowledged: it left the queue for good (moved or dropped). */
  acknowledged(): void {
    this.#held--;
  }

  /**
   * Close the scan's channel in its turn: `held` messages it held are back in the queue.
   *
   * @param held how many the scan still held
   * @param close the close (what it held is back in the queue once it settles)
   */
  async release(held: number, close: () => Promise<void>): Promise<void> {
    await this.#step(async () => {
      try {
        await close();
      } finally {
        this.#held -= held;
      }
    });
  }

  /**
   * The parked total: the queue's depth, read in its turn, and the messages held.
   *
   * @param depth the read of the queue's depth
   * @returns depth plus the messages held
   */
  count(depth: () => Promise<number>): Promise<number> {
    return this.#step(async () => await depth() + this.#held);
  }
}
