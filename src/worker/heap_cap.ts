/**
 * Holding the main thread's V8 heap near its live size while tasks flow. A
 * drain's in-flight state (decoded envelopes, task requests, the maps that
 * track them) outlives two young-generation collections often enough that
 * ~1.1 KB per task is promoted to the old generation, which V8 lets grow to
 * about four times what its last full collection left before it collects
 * again: ~25 MiB of garbage by the end of a 20,000-task drain, on a live heap
 * of ~13 MiB. V8's own cap (`--heap-growing-percent`) applies to every
 * isolate and made each collection's cost recur every ~2,000 tasks; this one
 * collects the main thread's heap only, once it holds twice what the last
 * collection left (every ~11,000 tasks in a drain, ~20 ms each). At 1.5 times
 * the peak RSS of the short Redis bench was ~7 MiB lower still, but its
 * drain rate 0.95–0.975 times the rate without (a collection every ~6,000
 * tasks); at twice, it did not measurably change.
 *
 * It needs V8's `gc()` function (`--expose-gc`, one of the worker's default
 * V8 flags); without it, it does nothing.
 *
 * @module
 */

/** V8's `gc()` (`--expose-gc`): `type: "major"` is a full collection. */
type GcFunction = (options?: { type?: "major" | "minor" }) => void;

/** Settled tasks between two looks at the heap. */
const CHECK_EVERY = 1024;

/** Collect once the heap in use is this many times what the last collection left. */
const GROWTH = 2;

/**
 * Collects the main thread's heap when tasks have doubled it since the last
 * collection (see the module documentation).
 *
 * @example
 * ```ts ignore
 * const cap = new HeapCap();
 * pool.onOutcomes = (outs) => { cap.settled(outs.length); };
 * ```
 */
export class HeapCap {
  readonly #gc: GcFunction | undefined;
  readonly #heapUsed: () => number;
  #count = 0;
  #live: number;

  /**
   * @param gc V8's `gc()`; by default the global one, present with `--expose-gc`; null: none
   * @param heapUsed bytes in use in this isolate's heap
   */
  constructor(
    gc: GcFunction | null | undefined = (globalThis as { gc?: GcFunction }).gc,
    heapUsed: () => number = () => Deno.memoryUsage().heapUsed,
  ) {
    this.#gc = typeof gc === "function" ? gc : undefined;
    this.#heapUsed = heapUsed;
    this.#live = this.#gc ? heapUsed() : 0;
  }

  /** Whether collections can be made (`gc()` is exposed). */
  get enabled(): boolean {
    return this.#gc !== undefined;
  }

  /**
   * Collect now (a full collection), if `gc()` is exposed: once the worker has
   * started, its start-up's garbage (~7 MB) before the Web Workers start.
   */
  collect(): void {
    if (!this.#gc) return;
    this.#gc({ type: "major" });
    this.#live = this.#heapUsed();
  }

  /**
   * Count settled tasks; every {@link CHECK_EVERY} of them, collect if the
   * heap holds {@link GROWTH} times what the last collection left.
   *
   * @param n tasks settled now
   * @returns whether a collection ran
   */
  settled(n: number): boolean {
    if (!this.#gc) return false;
    this.#count += n;
    if (this.#count < CHECK_EVERY) return false;
    this.#count = 0;
    const used = this.#heapUsed();
    if (used < this.#live * GROWTH) {
      // V8 collected by itself meanwhile: measure growth from what it left.
      this.#live = Math.min(this.#live, used);
      return false;
    }
    this.#gc({ type: "major" });
    this.#live = this.#heapUsed();
    return true;
  }
}
