/**
 * A table keyed by dispatch number for the tasks a worker has in flight,
 * which allocates nothing per task.
 *
 * @module
 */

/** Key of a free slot (dispatch numbers are not negative). */
const FREE = -1;

/**
 * The tasks in flight by dispatch number (non-negative integers below
 * 2^53), without the allocations a `Map` makes per task: a `Map` whose
 * keys keep rising rebuilds its hash table every few dozen insertions
 * (deleted entries fill it), and those tables live long enough to be
 * promoted to V8's old generation. Here the slots are open addressing
 * with linear probing and deletion by backward shift: the table only
 * grows, when half full. Dispatch numbers rise by one, so each usually
 * finds its own slot.
 *
 * Listing ({@link SeqMap.entries}, {@link SeqMap.keys},
 * {@link SeqMap.values}, iteration) returns arrays in key order, which for
 * dispatch numbers is oldest first.
 *
 * @example
 * ```ts
 * import { SeqMap } from "./seq_map.ts";
 * const running = new SeqMap<string>();
 * running.set(7, "tasks.add").set(8, "tasks.mul");
 * running.delete(7);
 * running.get(8); // "tasks.mul"
 * running.size; // 1
 * [...running]; // [[8, "tasks.mul"]]
 * ```
 */
export class SeqMap<V> {
  #keys: Float64Array;
  #vals: (V | undefined)[];
  #mask: number;
  #size = 0;
  /**
   * Entries not in their own slot (a collision moved them along). While
   * there is none, no probe passes another entry's slot, and a deletion
   * just frees its slot: the backward shift scans the whole run after it,
   * which for rising dispatch numbers is every entry younger than it.
   */
  #displaced = 0;

  /** @param capacity initial slots, rounded up to a power of two (at least 16). Default 128. */
  constructor(capacity = 128) {
    let n = 16;
    while (n < capacity) n *= 2;
    this.#keys = new Float64Array(n).fill(FREE);
    this.#vals = new Array<V | undefined>(n).fill(undefined);
    this.#mask = n - 1;
  }

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /**
   * The value under `key`.
   *
   * @param key a dispatch number
   * @returns its value, or undefined
   */
  get(key: number): V | undefined {
    const i = this.#find(key);
    return i < 0 ? undefined : this.#vals[i];
  }

  /**
   * Whether `key` is held.
   *
   * @param key a dispatch number
   * @returns true when held
   */
  has(key: number): boolean {
    return this.#find(key) >= 0;
  }

  /**
   * Set the value under `key` (replacing one held).
   *
   * @param key a dispatch number: an integer from 0 to 2^53 - 1
   * @param value its value
   * @returns this
   * @throws {RangeError} for any other key
   */
  set(key: number, value: V): this {
    if (!Number.isSafeInteger(key) || key < 0) {
      throw new RangeError(`A dispatch number is a non-negative integer, not ${key}`);
    }
    const keys = this.#keys;
    const mask = this.#mask;
    let i = key & mask;
    for (;;) {
      const k = keys[i];
      if (k === key) {
        this.#vals[i] = value;
        return this;
      }
      if (k === FREE) break;
      i = (i + 1) & mask;
    }
    keys[i] = key;
    this.#vals[i] = value;
    if (i !== (key & mask)) this.#displaced++;
    if (++this.#size * 2 > keys.length) this.#grow();
    return this;
  }

  /**
   * Remove `key`.
   *
   * @param key a dispatch number
   * @returns whether it was held
   */
  delete(key: number): boolean {
    let i = this.#find(key);
    if (i < 0) return false;
    const keys = this.#keys;
    const vals = this.#vals;
    const mask = this.#mask;
    this.#size--;
    if (this.#displaced === 0) {
      keys[i] = FREE;
      vals[i] = undefined;
      return true;
    }
    if (i !== (keys[i] & mask)) this.#displaced--;
    // Backward shift: move up each later entry of the run whose home slot is not after the gap.
    for (let j = (i + 1) & mask; keys[j] !== FREE; j = (j + 1) & mask) {
      const home = keys[j] & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      keys[i] = keys[j];
      vals[i] = vals[j];
      if (i === home) this.#displaced--;
      i = j;
    }
    keys[i] = FREE;
    vals[i] = undefined;
    return true;
  }

  /** Remove every entry. */
  clear(): void {
    this.#keys.fill(FREE);
    this.#vals.fill(undefined);
    this.#size = 0;
    this.#displaced = 0;
  }

  /**
   * The entries, oldest (lowest key) first.
   *
   * @returns `[key, value]` pairs
   */
  entries(): [number, V][] {
    const out: [number, V][] = [];
    const keys = this.#keys;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== FREE) out.push([keys[i], this.#vals[i] as V]);
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  /**
   * The keys, lowest first.
   *
   * @returns them
   */
  keys(): number[] {
    return this.entries().map((e) => e[0]);
  }

  /**
   * The values, by key, lowest first.
   *
   * @returns them
   */
  values(): V[] {
    return this.entries().map((e) => e[1]);
  }

  /**
   * Call `fn` with each entry, in no particular order, without building an
   * array or sorting (as {@link SeqMap.entries} does): for a per-batch scan
   * whose result does not depend on the order. `fn` must not change the map.
   *
   * @example
   * ```ts
   * const m = new SeqMap<string>();
   * m.set(2, "b");
   * m.set(1, "a");
   * const seen: string[] = [];
   * m.forEach((v) => seen.push(v)); // seen holds "a" and "b"
   * ```
   *
   * @param fn called with each value and its key
   */
  forEach(fn: (value: V, key: number) => void): void {
    const keys = this.#keys;
    const vals = this.#vals;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== FREE) fn(vals[i] as V, keys[i]);
    }
  }

  /**
   * Iterate over the entries, oldest first (a snapshot: changes made while
   * iterating are not seen).
   *
   * @returns an iterator of `[key, value]` pairs
   */
  [Symbol.iterator](): IterableIterator<[number, V]> {
    return this.entries()[Symbol.iterator]();
  }

  #find(key: number): number {
    // A negative key would match a free slot's mark ({@link FREE}): none is ever held.
    if (!(key >= 0)) return -1;
    const keys = this.#keys;
    const mask = this.#mask;
    for (let i = key & mask;; i = (i + 1) & mask) {
      const k = keys[i];
      if (k === key) return i;
      if (k === FREE) return -1;
    }
  }

  #grow(): void {
    const keys = this.#keys;
    const vals = this.#vals;
    const n = keys.length * 2;
    this.#keys = new Float64Array(n).fill(FREE);
    this.#vals = new Array<V | undefined>(n).fill(undefined);
    this.#mask = n - 1;
    this.#size = 0;
    this.#displaced = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== FREE) this.set(keys[i], vals[i] as V);
  }
}
