/**
 * Posting a batch between threads when the structured clone refuses part
 * of it: the items go one by one, so that only those refused are handled
 * apart, instead of the throw losing the whole batch.
 *
 * @module
 */

/**
 * Post `items` with `post` as one batch; when that throws an error
 * `splits` accepts, post each item alone and hand each one still refused
 * to `refuse` (a batch of one goes to `refuse` at once). Any other error is
 * thrown.
 *
 * @example
 * ```ts
 * import { postSplitting } from "./post_split.ts";
 * const sent: number[][] = [];
 * const refused: number[] = [];
 * postSplitting([1, 2, 3], (batch) => {
 *   if (batch.includes(2)) throw new TypeError("cannot clone 2");
 *   sent.push(batch);
 * }, (item) => refused.push(item));
 * sent; // [[1], [3]]
 * refused; // [2]
 * ```
 *
 * @param items the batch, in order
 * @param post posts some items (throws what `postMessage` throws)
 * @param refuse called for each item that cannot be posted, with what `post` threw
 * @param splits which errors mean "post them one by one" (default: any)
 */
export function postSplitting<T>(
  items: T[],
  post: (batch: T[]) => void,
  refuse: (item: T, err: unknown) => void,
  splits: (err: unknown) => boolean = () => true,
): void {
  try {
    post(items);
    return;
  } catch (err) {
    if (!splits(err)) throw err;
    if (items.length === 1) return refuse(items[0], err);
  }
  for (const item of items) {
    try {
      post([item]);
    } catch (err) {
      if (!splits(err)) throw err;
      refuse(item, err);
    }
  }
}
