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

/**
 * Resolves when `p` settles or `signal` aborts, whichever comes first; it
 * never rejects (what `p` settles with is left to its own handlers).
 *
 * @example
 * ```ts
 * import { untilAborted } from "./sleep.ts";
 * const stop = new AbortController();
 * stop.abort();
 * await untilAborted(new Promise(() => {}), stop.signal); // resolves at once
 * ```
 *
 * @param p the promise waited for
 * @param signal ends the wait early
 */
export function untilAborted(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    p.then(done, done);
  });
}
