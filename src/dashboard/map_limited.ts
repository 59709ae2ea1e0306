/**
 * {@link mapLimited}: an async map with at most so many calls in flight
 * (the dashboard's queue depths).
 *
 * @module
 */

/**
 * `fn` of each item, at most `limit` at a time, in the items' order; the first failure rejects
 * and stops the rest from starting.
 *
 * @example
 * ```ts
 * import { mapLimited } from "./map_limited.ts";
 * await mapLimited(["a", "b", "c"], 2, (q) => Promise.resolve(q.length)); // [1, 1, 1]
 * ```
 *
 * @param items the items
 * @param limit calls in flight at most
 * @param fn the call for one item
 * @returns the results, in the items' order
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  let next = 0, failed = false;
  const lane = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i]);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
