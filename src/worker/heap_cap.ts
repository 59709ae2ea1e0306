/**
 * Holding the main thread's V8 heap near its live size while tasks flow.
 * What a run of tasks promotes to the old generation, V8 lets grow to about
 * three or four times what its last full collection left before it collects
 * again. V8's own cap (`--heap-growing-percent`) applies to every isolate and
 * made each collection's cost recur every ~2,000 tasks; this one collects the
 * main thread's heap only, once it holds twice what the last collection left
 * (~20 ms each). When the worker still promoted ~1.1 KB per task of its
 * tasks in flight (before `seq_map.ts`), that was a collection every ~11,000
 * tasks of a drain and a ~12 MiB lower peak RSS at the same drain rate; at
 * 1.5 times ~7 MiB lower still, but at 0.95–0.975 times the drain rate. A
 * drain now promotes little, and it rarely collects.
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
    this.collect();
    return true;
  }
}
