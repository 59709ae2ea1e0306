/**
 * A timer for any number of milliseconds: the platform's timer holds a
 * signed 32-bit delay, so one of more than 2^31 - 1 ms (24.8 days) fires at
 * once. Longer waits go in steps of at most that.
 *
 * @module
 */

/**
 * The longest delay a timer holds (2^31 - 1 ms, 24.8 days): `setTimeout`
 * and `AbortSignal.timeout` fire a longer one after 1 ms.
 *
 * @example
 * ```ts
 * import { MAX_TIMER_MS } from "./long_timeout.ts";
 * MAX_TIMER_MS / 1000; // 2147483.647 (seconds)
 * ```
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Call `fn` after `ms` milliseconds, also past 2^31 - 1 ms (in steps of at
 * most that), unless cleared first; like `AbortSignal.timeout`'s timer it
 * keeps no process alive. Unlike that signal's, it can be cleared: a wait
 * that ends first leaves nothing pending (a signal's timer stays until it
 * fires, one per wait: 30,000 of them behind 1,000 waits per second with a
 * 30 s timeout).
 *
 * @example
 * ```ts
 * import { longTimeout } from "./long_timeout.ts";
 * const timer = longTimeout(30_000, () => console.log("too late"));
 * timer.clear(); // never called
 * ```
 *
 * @param ms milliseconds, >= 0 and finite
 * @param fn what to call then
 * @returns the timer, to clear
 */
export function longTimeout(ms: number, fn: () => void): { clear(): void } {
  let id: ReturnType<typeof setTimeout> | undefined;
  const step = (left: number) => {
    const t = setTimeout(() => {
      if (left > MAX_TIMER_MS) step(left - MAX_TIMER_MS);
      else fn();
    }, Math.min(left, MAX_TIMER_MS));
    Deno.unrefTimer(t);
    id = t;
  };
  step(ms);
  return { clear: () => clearTimeout(id) };
}
