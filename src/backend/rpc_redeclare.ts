/**
 * The bounded wait of rpc:// sends for a reply queue that RabbitMQ deleted
 * to be declared again.
 *
 * @module
 */

/**
 * Wait for `declared` at most `ms` milliseconds; then reject with
 * `late()` (the declaration goes on in the background).
 *
 * @example
 * ```ts
 * import { withinPublishTimeout } from "./rpc_redeclare.ts";
 * await withinPublishTimeout(Promise.resolve(), 1000, () => new Error("not declared"));
 * ```
 *
 * @param declared settles once the reply queue is consumed again
 * @param ms the publish timeout in milliseconds
 * @param late the error a wait past `ms` rejects with
 * @returns settles as `declared` does, or rejects with `late()` after `ms`
 */
export async function withinPublishTimeout(
  declared: Promise<void>,
  ms: number,
  late: () => Error,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  try {
    await Promise.race([declared, expired]);
  } finally {
    clearTimeout(timer);
  }
}
