/**
 * A timer structure for many deadlines: a binary min-heap of due times with
 * a single platform timer armed no later than the earliest one. Adding,
 * cancelling and firing cost O(log n); nothing polls.
 *
 * @module
 */

import { MAX_TIMER_MS } from "../broker/long_timeout.ts";

interface Slot<T> {
  due: number;
  order: number;
  item: T;
  index: number;
}

/**
 * A handle to a scheduled item, for {@link TimerQueue.cancel}.
 *
 * @example Cancelling a scheduled item
 * ```ts
 * import { TimerQueue, type TimerHandle } from "@celeriac/celeriac/worker";
 * const timers = new TimerQueue<string>((item) => console.log(item));
 * const handle: TimerHandle = timers.add(Date.now() + 60_000, "later");
 * timers.cancel(handle); // true: it will not fire
 * ```
 */
export interface TimerHandle {
  /** When the item is due (epoch milliseconds). */
  readonly due: number;
}

/**
 * Items scheduled at absolute times; `onDue` receives each when its time
 * comes, earliest first (items due at the same time in the order added).
 *
 * @example Running items at their times
 * ```ts
 * import { TimerQueue } from "@celeriac/celeriac/worker";
 * const fired: string[] = [];
 * const timers = new TimerQueue<string>((item) => fired.push(item));
 * timers.add(Date.now() + 20, "second");
 * timers.add(Date.now() + 10, "first");
 * await new Promise((r) => setTimeout(r, 50));
 * fired; // ["first", "second"]
 * timers.clear();
 * ```
 */
export class TimerQueue<T> {
  readonly #onDue: (item: T) => void;
  readonly #now: () => number;
  readonly #heap: Slot<T>[] = [];
  #order = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedFor = Infinity;

  /**
   * Create an empty queue.
   *
   * @param onDue receives each item when it is due
   * @param now the clock, in epoch milliseconds (default `Date.now`)
   */
  constructor(onDue: (item: T) => void, now: () => number = Date.now) {
    this.#onDue = onDue;
    this.#now = now;
  }

  /** How many items are waiting. */
  get size(): number {
    return this.#heap.length;
  }

  /**
   * Schedule an item.
   *
   * @param due when it is due (epoch milliseconds); a past time fires soon
   * @param item what `onDue` receives
   * @returns a handle for {@link TimerQueue.cancel}
   */
  add(due: number, item: T): TimerHandle {
    const slot: Slot<T> = { due, order: this.#order++, item, index: this.#heap.length };
    this.#heap.push(slot);
    this.#up(slot.index);
    this.#arm();
    return slot;
  }

  /**
   * Unschedule an item.
   *
   * @param handle what {@link TimerQueue.add} returned
   * @returns whether it was still waiting
   */
  cancel(handle: TimerHandle): boolean {
    const slot = handle as Slot<T>;
    const i = slot.index;
    if (i < 0 || this.#heap[i] !== slot) return false;
    this.#removeAt(i);
    this.#arm();
    return true;
  }

  /** The waiting items, earliest first. */
  items(): T[] {
    return [...this.#heap].sort((a, b) => this.#cmp(a, b)).map((s) => s.item);
  }

  /**
   * Unschedule everything.
   *
   * @returns the items that were waiting, earliest first
   */
  clear(): T[] {
    const items = this.items();
    for (const s of this.#heap) s.index = -1;
    this.#heap.length = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
    return items;
  }

  #cmp(a: Slot<T>, b: Slot<T>): number {
    return a.due - b.due || a.order - b.order;
  }

  /**
   * Arm the timer for the earliest item, lazily: one armed no later than
   * that stays (it fires early, finds nothing due and re-arms), so
   * cancelling the earliest of many items costs no timer each; an empty
   * queue holds none.
   */
  #arm(): void {
    const first = this.#heap[0];
    if (first && this.#timer !== undefined && this.#armedFor <= first.due) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
    if (!first) return;
    this.#armedFor = first.due;
    const delay = Math.min(Math.max(0, first.due - this.#now()), MAX_TIMER_MS);
    this.#timer = setTimeout(() => this.#fire(), delay);
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = this.#now();
    while (this.#heap.length > 0 && this.#heap[0].due <= now) {
      const slot = this.#heap[0];
      this.#removeAt(0);
      this.#onDue(slot.item);
    }
    this.#arm();
  }

  #removeAt(i: number): void {
    const heap = this.#heap;
    const slot = heap[i];
    const last = heap.pop()!;
    slot.index = -1;
    if (i < heap.length) {
      heap[i] = last;
      last.index = i;
      this.#down(i);
      this.#up(last.index);
    }
  }

  #up(i: number): void {
    const heap = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#cmp(heap[i], heap[parent]) >= 0) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const heap = this.#heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && this.#cmp(heap[l], heap[m]) < 0) m = l;
      if (r < heap.length && this.#cmp(heap[r], heap[m]) < 0) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }

  #swap(i: number, j: number): void {
    const heap = this.#heap;
    [heap[i], heap[j]] = [heap[j], heap[i]];
    heap[i].index = i;
    heap[j].index = j;
  }
}
