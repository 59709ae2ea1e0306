/**
 * Splitting a caller-sized list of values into Redis commands of bounded
 * size. Spreading a large array into a call (`client.lpush(key, ...values)`)
 * overflows the JavaScript call stack somewhere past 100,000 values, and a
 * single huge command is buffered whole by Redis (up to its 1 GB
 * `client-query-buffer-limit`, past which it drops the connection) and
 * blocks every other client while it runs.
 *
 * @module
 */

/**
 * Values per command when a batch is split: far below the call stack's
 * limit (about 120,000 arguments), about 0.5–1 MB of a queue's envelopes,
 * and a command that holds Redis about 1 ms; 100,000 messages are 100
 * commands, which pipelining sends together. Measured by
 * bench/redis_chunk_size.ts (100,000 LPUSHed 600-byte values, two runs of
 * 7 alternated rounds, load 2.5–3, medians): in all 206–208 ms at 1,000
 * per command, 214–237 ms at 100, 219–232 ms at 10,000, 218–235 ms at
 * 50,000 — the size does not change the cost — while the longest command
 * held Redis 0.7–1.1 ms at 1,000, 4.1–6.5 ms at 10,000, 16–21 ms at 50,000.
 *
 * @example
 * ```ts
 * import { VALUES_PER_COMMAND } from "./chunks.ts";
 * VALUES_PER_COMMAND; // 1000
 * ```
 */
export const VALUES_PER_COMMAND = 1000;

/**
 * `items` cut into consecutive slices of at most `size`, in order (none
 * for an empty list).
 *
 * @example
 * ```ts
 * import { chunked } from "./chunks.ts";
 * chunked([1, 2, 3, 4, 5], 2); // [[1, 2], [3, 4], [5]]
 * ```
 *
 * @param items the values
 * @param size the largest slice (default {@link VALUES_PER_COMMAND})
 * @returns the slices
 */
export function chunked<T>(items: readonly T[], size = VALUES_PER_COMMAND): T[][] {
  if (!(size >= 1)) throw new RangeError(`chunk size must be at least 1, got ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
