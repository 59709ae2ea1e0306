/**
 * A wait that an AbortSignal ends early.
 *
 * @module
 */

/**
 * Wait `ms`, or less if `signal` aborts first (at once when it already has).
 * Resolves either way; it never rejects.
 *
 * @example
 * ```ts
 * import { sleep } from "./sleep.ts";
 * const closing = new AbortController();
 * closing.abort();
 * await sleep(60_000, closing.signal); // resolves at once
 * ```
 *
 * @param ms how long
 * @param signal ends the wait early
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
