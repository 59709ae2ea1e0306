/**
 * Connecting at start-up the way Celery does
 * (`broker_connection_retry_on_startup`, on by default): a broker, result
 * backend or beat store that cannot be reached yet is tried again with a
 * growing delay and a log line per attempt, instead of the worker or beat
 * exiting. `--fail-fast` turns this off.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { BrokerConnectionError } from "../broker/errors.ts";
import type { Celery } from "../client/app.ts";

const log = getLogger(["celeriac", "cli"]);

/** Celery's `broker_connection_max_retries` default. */
export const STARTUP_MAX_RETRIES = 100;

/**
 * Seconds before start-up attempt `attempt + 1`: 2, 4, 6, … up to 30, as
 * kombu's `ensure_connection` waits (`interval_start` 2, `interval_step` 2,
 * `interval_max` 30).
 *
 * @example
 * ```ts
 * startupRetryDelay(1); // 2
 * startupRetryDelay(20); // 30
 * ```
 *
 * @param attempt the attempt that failed, from 1
 * @returns the delay in seconds
 */
export function startupRetryDelay(attempt: number): number {
  return Math.min(2 * attempt, 30);
}

/** Options of {@link retryOnStartup}. */
export interface RetryOnStartupOptions {
  /** Give up at the first failure (Celery: `broker_connection_retry_on_startup = False`). */
  failFast?: boolean;
  /** Attempts after the first before giving up; default {@link STARTUP_MAX_RETRIES}. */
  maxRetries?: number;
  /** Stops waiting (a signal during start-up); the promise rejects with its reason. */
  signal?: AbortSignal;
}

/**
 * Open the app's broker and result backend.
 *
 * @example
 * ```ts ignore
 * await retryOnStartup(async (signal) => {
 *   await openAppConnections(app, signal);
 *   await beat.start();
 * });
 * ```
 *
 * @param app the app whose connections to open
 * @param signal aborts a connect that hangs (a server that never answers)
 */
export async function openAppConnections(app: Celery, signal?: AbortSignal): Promise<void> {
  await app.broker({ signal });
  if (app.config.backend !== null) await app.resultBackend({ signal });
}

/**
 * Run `open` until it succeeds, retrying (2, 4, … 30 s apart, a log line
 * each time) while it fails with a transient {@link BrokerConnectionError}:
 * the start-up of a worker, and of a beat whose store cannot be reached yet.
 * Any other error is thrown at once.
 *
 * @example
 * ```ts ignore
 * await retryOnStartup(() => beat.start(), { failFast: false });
 * ```
 *
 * @param open what to open; given the abort signal of `options`
 * @param options fail fast, retries, abort signal
 * @throws {BrokerConnectionError} with `failFast`, or after the last retry
 */
export async function retryOnStartup(
  open: (signal?: AbortSignal) => Promise<void>,
  options: RetryOnStartupOptions = {},
): Promise<void> {
  const max = options.maxRetries ?? STARTUP_MAX_RETRIES;
  for (let attempt = 1;; attempt++) {
    options.signal?.throwIfAborted();
    try {
      await open(options.signal);
      if (attempt > 1) log.info("Connected after {n} attempt(s)", { n: attempt });
      return;
    } catch (err) {
      const retry = err instanceof BrokerConnectionError && err.transient;
      if (!retry || options.failFast || attempt > max) throw err;
      const seconds = startupRetryDelay(attempt);
      log.error(
        "{error} Trying again in {seconds} s ({attempt}/{max}; --fail-fast exits instead)",
        {
          error: err.message,
          seconds,
          attempt,
          max,
        },
      );
      await sleep(seconds * 1000, options.signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
