/**
 * Riding out an outage: retry an operation that failed because the server
 * could not be reached, with backoff, for a bounded time. Used for what must
 * not be lost when a broker or result store restarts: acknowledgements,
 * parking, requeues, result stores and follow-up publishes.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { BrokerConnectionError } from "./errors.ts";
import { sleep } from "./sleep.ts";

const log = getLogger(["celeriac", "outage"]);

/**
 * Default of {@link OutageRetryOptions.limit}: 300 seconds. Celery retries
 * result stores (`result_backend_always_retry`) and publishes for minutes;
 * ioredis alone gives up after about 1.4 s.
 *
 * @example
 * ```ts
 * import { DEFAULT_OUTAGE_LIMIT } from "@celeriac/celeriac/protocol";
 * DEFAULT_OUTAGE_LIMIT; // 300
 * ```
 */
export const DEFAULT_OUTAGE_LIMIT = 300;

/**
 * Options of {@link retryWhileDown}.
 *
 * @example
 * ```ts
 * import type { OutageRetryOptions } from "@celeriac/celeriac/protocol";
 * const options: OutageRetryOptions = { limit: 60, what: "store results" };
 * ```
 */
export interface OutageRetryOptions {
  /** Seconds to keep retrying; default {@link DEFAULT_OUTAGE_LIMIT}. 0 tries once. */
  limit?: number;
  /** What is being done, for log lines ("acknowledge 3 message(s)"). */
  what?: string;
  /** Stop retrying (the last error is thrown). */
  signal?: AbortSignal;
  /**
   * Which errors mean "down, try again"; default: a {@link BrokerConnectionError}
   * that is `transient` (not a deleted KV file, a wrong password, a missing
   * permission).
   */
  retryable?: (err: unknown) => boolean;
}

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 2000;

/**
 * Run `fn`; while it fails because the server is down, wait (100 ms,
 * doubling to 2 s) and run it again, for at most `limit` seconds. Other
 * errors, and the last one past the limit, are thrown.
 *
 * `fn` runs again in full, so it must be safe to repeat (an acknowledgement,
 * a result store, a requeue by tag are).
 *
 * @example
 * ```ts
 * import { retryWhileDown } from "@celeriac/celeriac/protocol";
 * const value = await retryWhileDown(() => Promise.resolve(42), { what: "answer" });
 * ```
 *
 * @param fn the operation
 * @param options limit, signal, description
 * @returns what `fn` returns
 */
export async function retryWhileDown<T>(
  fn: () => Promise<T>,
  options: OutageRetryOptions = {},
): Promise<T> {
  const limitMs = (options.limit ?? DEFAULT_OUTAGE_LIMIT) * 1000;
  const retryable = options.retryable ??
    ((err) => err instanceof BrokerConnectionError && err.transient);
  const start = Date.now();
  let delay = FIRST_DELAY_MS;
  let waiting = false;
  let reached = false;
  try {
    for (;;) {
      try {
        const value = await fn();
        reached = true;
        return value;
      } catch (err) {
        const waited = Date.now() - start;
        if (!retryable(err) || waited + delay > limitMs || options.signal?.aborted) throw err;
        if (!waiting) {
          waiting = true;
          outage.begin(options.what ?? "operation", err as Error, limitMs);
        }
        await sleep(delay, options.signal);
        delay = Math.min(delay * 2, MAX_DELAY_MS);
      }
    }
  } finally {
    if (waiting) outage.end(reached);
  }
}

/**
 * Wait for `step`, but not for a server to come back: end as soon as some
 * operation of this process waits out an outage in {@link retryWhileDown}
 * (at once while one does). A worker's warm shutdown uses it so as not to
 * wait up to the outage limit. A step left behind goes on until its
 * transport closes; how it ends then is logged at debug.
 *
 * @example
 * ```ts ignore
 * if (await unlessOutage(worker.drainSettling())) log.warn("leaving the rest to redelivery");
 * ```
 *
 * @param step what to wait for
 * @returns false when `step` ended, true when an outage came first
 */
export async function unlessOutage(step: Promise<void>): Promise<boolean> {
  let told: (() => void) | undefined;
  const begun = outage.waiting > 0
    ? Promise.resolve(true)
    : new Promise<boolean>((resolve) => outage.listeners.add(told = () => resolve(true)));
  try {
    const down = await Promise.race([step.then(() => false), begun]);
    if (down) step.catch((err) => log.debug("Left behind: {error}", { error: err }));
    return down;
  } finally {
    if (told) outage.listeners.delete(told);
  }
}

/**
 * One warning when operations start waiting for a server, one line when the
 * last of them is through, however many wait (a draining worker has one
 * acknowledgement and one result store per batch in flight).
 */
const outage = {
  waiting: 0,
  since: 0,
  total: 0,
  reached: 0,
  /** Whoever waits in {@link unlessOutage}, told when an operation starts waiting. */
  listeners: new Set<() => void>(),
  begin(what: string, err: Error, limitMs: number): void {
    if (this.listeners.size > 0) {
      const told = [...this.listeners];
      this.listeners.clear();
      for (const l of told) l();
    }
    if (this.waiting++ === 0) {
      this.since = Date.now();
      this.total = 0;
      this.reached = 0;
      log.warn("{what}: server unreachable ({error}); retrying for up to {limit} s", {
        what,
        error: err.message,
        limit: limitMs / 1000,
      });
    }
    this.total++;
  },
  /** `reached`: the operation went through (not given up, nor stopped by its signal). */
  end(reached: boolean): void {
    if (reached) this.reached++;
    if (--this.waiting > 0) return;
    const line = {
      n: this.total,
      seconds: ((Date.now() - this.since) / 1000).toFixed(1),
    };
    if (this.reached > 0) {
      log.info("The server is reachable again: {n} operation(s) waited {seconds} s", line);
    } else {
      log.debug("Stopped waiting for the server: {n} operation(s) waited {seconds} s", line);
    }
  },
};
