/**
 * Riding out an outage: retry an operation that failed because the server
 * could not be reached, with backoff, for a bounded time. Used for what must
 * not be lost when a broker or result store restarts: acknowledgements,
 * parking, requeues, result stores and follow-up publishes.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import { getLogger } from "@logtape/logtape";
import { BrokerConnectionError } from "./errors.ts";
import { refusedForReplicas } from "./redis_failures.ts";
import { sleep } from "./sleep.ts";

const log = getLogger(["celeriac", "outage"]);

/**
 * Default of {@link OutageRetryOptions.limit}: 300 seconds. Celery retries
 * result stores (`result_backend_always_retry`) and publishes for minutes;
 * a Redis connection alone gives up on a command after about a second.
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

/**
 * Whether `err` says a KV file cannot be written (its disk full or failing:
 * a {@link BrokerConnectionError} with `verb` "write"), rather than that a
 * server cannot be reached: what a warning about the outage should say.
 *
 * @example
 * ```ts
 * import { cannotWrite } from "./outage.ts";
 * cannotWrite(new Error("timeout")); // false
 * ```
 *
 * @param err an error an operation waits out
 * @returns true for a KV file that cannot be written
 */
export function cannotWrite(err: unknown): err is BrokerConnectionError {
  return err instanceof BrokerConnectionError && err.verb === "write";
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
  const watch = watches.getStore();
  const op = {};
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
          watch?.begin(op, err as Error);
        }
        await sleep(delay, options.signal);
        delay = Math.min(delay * 2, MAX_DELAY_MS);
      }
    }
  } finally {
    if (waiting) {
      outage.end(reached);
      watch?.end(op);
    }
  }
}

/**
 * How long an operation of an {@link OutageWatch} must have waited out an
 * outage before {@link OutageWatch.unless} stops waiting for its step: a
 * dropped connection that comes back at once (a blip, a fast restart) is
 * still waited for.
 */
export const OUTAGE_GRACE_MS = 5000;

const watches = new AsyncLocalStorage<OutageWatch>();

/**
 * The operations started under {@link OutageWatch.run} (and everything they
 * call, in the same async context) that wait out an outage in
 * {@link retryWhileDown}. A worker's warm shutdown waits for a step unless
 * the step's own operations wait for a server that stays unreachable: an
 * outage of another server, or a short one, does not end the wait.
 *
 * @example
 * ```ts ignore
 * const watch = new OutageWatch();
 * const step = watch.run(() => intake.requeueAll());
 * if (await watch.unless(step)) log.warn("leaving the rest to redelivery");
 * ```
 */
export class OutageWatch {
  /** When each operation waiting now started to wait, and what it failed with; oldest first. */
  readonly #waiting = new Map<object, { since: number; err?: Error }>();
  /** Told when one of them starts or stops waiting. */
  readonly #changed = new Set<() => void>();
  #lastError: Error | null = null;

  /**
   * Whether one of this watch's operations waits out an outage now.
   *
   * @example
   * ```ts ignore
   * if (state.outages.waiting) log.info("a settlement waits for a server");
   * ```
   */
  get waiting(): boolean {
    return this.#waiting.size > 0;
  }

  /**
   * The error the last of this watch's operations to start waiting out an
   * outage failed with (kept once it is through), or null when none has
   * waited: what a warning after the wait (a slow lease renewal round) says
   * was wrong ({@link cannotWrite}). For what is wrong now, {@link error}.
   *
   * @example
   * ```ts ignore
   * if (cannotWrite(watch.lastError)) log.warn("the KV file could not be written");
   * ```
   */
  get lastError(): Error | null {
    return this.#lastError;
  }

  /**
   * The error of the operation that has waited longest of those waiting now
   * (the one that makes {@link unless} leave), or null when none waits or it
   * said none: what a warning about leaving says is wrong ({@link cannotWrite}),
   * not the error of an operation that started later or is through.
   *
   * @example
   * ```ts ignore
   * if (await watch.unless(step) && cannotWrite(watch.error)) log.warn("cannot write");
   * ```
   */
  get error(): Error | null {
    const [oldest] = this.#waiting.values();
    return oldest?.err ?? null;
  }

  /**
   * Run `fn` so that the {@link retryWhileDown} calls it makes belong to this watch.
   *
   * @param fn what to run
   * @returns what `fn` returns
   */
  run<T>(fn: () => T): T {
    return watches.run(this, fn);
  }

  /**
   * Wait for `step`, but not for a server to come back: end once one of this
   * watch's operations has waited out an outage for `graceMs`. A step left
   * behind goes on until its transport closes; how it ends then is logged at
   * debug. A step that has ended is never left behind.
   *
   * @param step what to wait for
   * @param graceMs how long an operation may wait for a server first
   * @returns false when `step` ended, true when it was left behind
   */
  async unless(step: Promise<void>, graceMs: number = OUTAGE_GRACE_MS): Promise<boolean> {
    let ended = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let leave!: () => void;
    const left = new Promise<true>((resolve) => leave = () => resolve(true));
    const check = () => {
      clearTimeout(timer);
      const [oldest] = this.#waiting.values();
      if (!oldest) return;
      const since = oldest.since;
      // Decided in a timer, after the reactions of a step that has already ended.
      timer = setTimeout(() => {
        if (ended) return;
        if (Date.now() - since >= graceMs) leave();
        else check();
      }, Math.max(0, since + graceMs - Date.now()));
    };
    this.#changed.add(check);
    check();
    try {
      const done = step.then(() => {
        ended = true;
        return false;
      });
      const down = await Promise.race([done, left]);
      if (down) step.catch((err) => log.debug("Left behind: {error}", { error: err }));
      return down;
    } finally {
      ended = true;
      clearTimeout(timer);
      this.#changed.delete(check);
    }
  }

  /**
   * An operation of this watch starts waiting for a server ({@link retryWhileDown}).
   *
   * @param op the operation
   * @param err what it failed with; default not said
   */
  begin(op: object, err?: Error): void {
    if (err) this.#lastError = err;
    this.#waiting.set(op, { since: Date.now(), err });
    for (const c of this.#changed) c();
  }

  /**
   * It stopped waiting (got through, gave up or was stopped).
   *
   * @param op the operation
   */
  end(op: object): void {
    this.#waiting.delete(op);
    for (const c of this.#changed) c();
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
  begin(what: string, err: Error, limitMs: number): void {
    if (this.waiting++ === 0) {
      this.since = Date.now();
      this.total = 0;
      this.reached = 0;
      // A KV file on a full disk is reached but cannot be written, a Redis master short of
      // in-sync replicas (NOREPLICAS) is reached but refuses writes: say that, not "unreachable".
      const down = cannotWrite(err)
        ? "cannot write"
        : refusedForReplicas(err) || refusedForReplicas(err.cause)
        ? "server refuses writes"
        : "server unreachable";
      log.warn("{what}: {down} ({error}); retrying for up to {limit} s", {
        what,
        down,
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
