/**
 * `AbortSignal.timeout` for any number of milliseconds: the platform's
 * timer holds a signed 32-bit delay, so one of more than 2^31 - 1 ms
 * (24.8 days) fires at once. Longer waits go in steps of at most that.
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
 * A signal aborted with a `TimeoutError` `DOMException` after `ms`
 * milliseconds, as `AbortSignal.timeout(ms)` — also past 2^31 - 1 ms. Like
 * it, it keeps no process alive.
 *
 * @example
 * ```ts
 * import { timeoutSignal } from "./long_timeout.ts";
 * const signal = timeoutSignal(30 * 24 * 3600 * 1000); // 30 days, not at once
 * console.log(signal.aborted); // false
 * ```
 *
 * @param ms milliseconds, >= 0 and finite
 * @returns the signal
 */
export function timeoutSignal(ms: number): AbortSignal {
  if (ms <= MAX_TIMER_MS) return AbortSignal.timeout(ms);
  const controller = new AbortController();
  const step = (left: number) => {
    const part = AbortSignal.timeout(Math.min(left, MAX_TIMER_MS));
    part.addEventListener("abort", () => {
      if (left > MAX_TIMER_MS) step(left - MAX_TIMER_MS);
      else controller.abort(part.reason);
    }, { once: true });
  };
  step(ms);
  return controller.signal;
}
