/**
 * Retrying a task from inside its handler: the {@link Retry} signal that
 * `ctx.retry()` throws, the {@link MaxRetriesExceededError} stored when the
 * limit is reached, and the {@link RetryOptions} of a retry.
 *
 * @module
 */

import { pyRepr } from "../protocol/repr.ts";

/**
 * Options of `ctx.retry()` (Celery's `Task.retry` keywords).
 *
 * @example Retrying a failed download in 30 seconds, at most 5 times
 * ```ts
 * import { Celery, type RetryOptions } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * app.task("tasks.download", { bind: true }, async (ctx, url: string) => {
 *   const res = await fetch(url, { signal: ctx.signal });
 *   if (res.status === 503) {
 *     const options: RetryOptions = { countdown: 30, maxRetries: 5, exc: new Error("503") };
 *     throw ctx.retry(options);
 *   }
 *   return await res.text();
 * });
 * ```
 */
export interface RetryOptions {
  /**
   * Seconds from now until the retry runs [`countdown`]. Default: the
   * task's `defaultRetryDelay` (180 s) unless `eta` is given.
   */
  countdown?: number;
  /** Earliest time of the retry [`eta`]; `countdown` wins when both are given. */
  eta?: Date;
  /**
   * Retry limit for this call [`max_retries`]; default the task's
   * `maxRetries` (3). `null` retries forever.
   */
  maxRetries?: number | null;
  /**
   * The error that caused the retry [`exc`]: stored with the RETRY state,
   * and stored as the failure (instead of {@link MaxRetriesExceededError})
   * once the limit is reached.
   */
  exc?: unknown;
  /** Positional arguments of the retry; default the current ones [`args`]. */
  args?: readonly unknown[];
  /** Keyword arguments of the retry; default the current ones [`kwargs`]. */
  kwargs?: Readonly<Record<string, unknown>>;
}

/**
 * The signal `ctx.retry()` throws so that the handler stops (Celery's
 * `celery.exceptions.Retry`). The worker publishes the retry, stores the
 * RETRY state and acknowledges the original message. Do not catch it; if a
 * handler catches it anyway, the retry still happens once the handler ends.
 *
 * @example Letting a retry pass through a catch-all
 * ```ts
 * import { Celery, Retry } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * app.task("tasks.sync", { bind: true }, async (ctx, id: string) => {
 *   try {
 *     const res = await fetch(`https://api.example.com/items/${id}`);
 *     if (!res.ok) ctx.retry({ countdown: 10 }); // throws a Retry
 *     return await res.json();
 *   } catch (err) {
 *     if (err instanceof Retry) throw err;
 *     throw new Error(`sync of ${id} failed`, { cause: err });
 *   }
 * });
 * ```
 */
export class Retry extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "RETRY";
  /** The Python class of this signal. */
  readonly excModule: string = "celery.exceptions";
  /** The error that caused the retry, if one was given. */
  override readonly cause: unknown;
  /** When the retry runs. */
  readonly eta: Date;

  /**
   * Describe a retry (created by `ctx.retry()`).
   *
   * @param when Celery's description of the delay, e.g. `in 30s`
   * @param eta when the retry runs
   * @param cause the error that caused the retry
   */
  constructor(when: string, eta: Date, cause?: unknown) {
    super(cause === undefined ? `Retry ${when}` : `Retry ${when}: ${describe(cause)}`);
    this.name = "Retry";
    this.eta = eta;
    this.cause = cause;
  }
}

/** Python-like repr of an error, as Celery's `Retry` message shows it: `KeyError('transient')`. */
function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}(${pyRepr(err.message)})` : pyRepr(err);
}

/**
 * A task asked for a retry beyond its `maxRetries`; stored as the task's
 * failure, so a Python client raises `celery.exceptions.MaxRetriesExceededError`.
 *
 * @example Recognising the failure on the client side
 * ```ts
 * import { Celery, MaxRetriesExceededError, TaskError } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const result = await add.delay(2, 3);
 * try {
 *   await result.get({ timeout: 60_000 });
 * } catch (err) {
 *   if (err instanceof TaskError && err.excType === "MaxRetriesExceededError") {
 *     console.error("gave up:", err.excMessage[0]); // "Can't retry tasks.sync[…] args:('42',) kwargs:{}"
 *   }
 * }
 * ```
 */
export class MaxRetriesExceededError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "MAX_RETRIES_EXCEEDED";
  /** The Python module of this error. */
  readonly excModule: string = "celery.exceptions";

  /**
   * Describe a retry that is not allowed.
   *
   * @param message Celery's text: `Can't retry <name>[<id>] args:<args> kwargs:<kwargs>`
   */
  constructor(message: string) {
    super(message);
    this.name = "MaxRetriesExceededError";
  }
}
