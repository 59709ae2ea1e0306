/**
 * Retry policy, as Celery 5.2's `Task.retry` and `autoretry_for` decide it:
 * when the retry runs, whether the retry limit allows it, and the
 * exponential backoff of automatic retries. Pure: no I/O, no timers.
 *
 * @module
 */

import { MaxRetriesExceededError, Retry, type RetryOptions } from "../client/retry.ts";
import type { TaskOptions } from "../client/task_options.ts";
import { argsRepr, kwargsRepr } from "../protocol/repr.ts";
import { describeValue } from "../protocol/task_fields.ts";

/** Celery's `default_retry_delay`: 3 minutes. */
export const DEFAULT_RETRY_DELAY = 180;
/** Celery's default `max_retries`. */
export const DEFAULT_MAX_RETRIES = 3;
/** Celery's default `retry_backoff_max`: 10 minutes. */
export const DEFAULT_RETRY_BACKOFF_MAX = 600;

/**
 * Options of {@link backoffDelay}.
 *
 * @example
 * ```ts
 * import type { BackoffOptions } from "@celeriac/celeriac/worker";
 * const third: BackoffOptions = { factor: 2, retries: 2, maximum: 600, jitter: false }; // 8 s
 * ```
 */
export interface BackoffOptions {
  /** Base delay in seconds (Celery's `retry_backoff` as a number; `true` is 1). */
  factor: number;
  /** Retries so far (0 before the first retry). */
  retries: number;
  /** Longest delay in seconds. */
  maximum: number;
  /** Full jitter: draw the delay between 0 and the computed one. */
  jitter: boolean;
  /** Random source in [0, 1); default `Math.random`. */
  random?: () => number;
}

/**
 * Exponential backoff in whole seconds, as Celery's
 * `get_exponential_backoff_interval`: `min(maximum, factor * 2^retries)`,
 * then with full jitter a whole number drawn uniformly from 0 to that.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "@celeriac/celeriac/worker";
 * backoffDelay({ factor: 1, retries: 3, maximum: 600, jitter: false }); // 8
 * backoffDelay({ factor: 1, retries: 20, maximum: 600, jitter: false }); // 600
 * backoffDelay({ factor: 1, retries: 3, maximum: 600, jitter: true, random: () => 0.5 }); // 4
 * ```
 *
 * @param options factor, retries, maximum, jitter
 * @returns the delay in seconds
 */
export function backoffDelay(options: BackoffOptions): number {
  const factor = Math.trunc(options.factor);
  let countdown = Math.min(options.maximum, factor * 2 ** options.retries);
  if (options.jitter) countdown = Math.floor((options.random ?? Math.random)() * (countdown + 1));
  return Math.max(0, countdown);
}

/**
 * The running task, as a retry decision needs it.
 *
 * @example
 * ```ts
 * import type { RetryState } from "@celeriac/celeriac/worker";
 * const state: RetryState = { name: "tasks.sync", id: "1", retries: 0, args: ["42"], kwargs: {} };
 * ```
 */
export interface RetryState {
  /** Task name. */
  name: string;
  /** Task id. */
  id: string;
  /** Retries so far. */
  retries: number;
  /** Current positional arguments. */
  args: readonly unknown[];
  /** Current keyword arguments. */
  kwargs: Readonly<Record<string, unknown>>;
}

/**
 * A retry to send: the message gets these values.
 *
 * @example
 * ```ts
 * import type { PlannedRetry } from "@celeriac/celeriac/worker";
 * function describe(p: PlannedRetry): string {
 *   return `retry #${p.retries} ${p.when}, at ${p.eta.toISOString()}`;
 * }
 * ```
 */
export interface PlannedRetry {
  /** The new `retries` header (previous + 1). */
  retries: number;
  /** When the retry runs (the `eta` header). */
  eta: Date;
  /** Celery's description of the delay: `in 30s` or `at <time>`. */
  when: string;
  /** Positional arguments of the retry. */
  args: readonly unknown[];
  /** Keyword arguments of the retry. */
  kwargs: Readonly<Record<string, unknown>>;
}

/**
 * Decide a retry as Celery's `Task.retry` does: the eta is `now + countdown`
 * (countdown defaults to the task's `defaultRetryDelay` unless an eta is
 * given), and a retry whose number exceeds the limit is refused.
 *
 * @example
 * ```ts
 * import { planRetry } from "@celeriac/celeriac/worker";
 * const state = { name: "tasks.sync", id: "1", retries: 3, args: ["42"], kwargs: {} };
 * const plan = planRetry(state, { countdown: 5 }, {}, new Date(0));
 * plan instanceof Error; // true: past the default limit of 3
 * String(plan); // "MaxRetriesExceededError: Can't retry tasks.sync[1] args:('42',) kwargs:{}"
 * ```
 *
 * @param state the running task
 * @param options the retry call
 * @param task the task's options (`maxRetries`, `defaultRetryDelay`)
 * @param now the current time
 * @returns the retry to send, or the error to fail with: `options.exc`
 *   when given, else a {@link MaxRetriesExceededError}
 */
export function planRetry(
  state: RetryState,
  options: RetryOptions,
  task: Pick<TaskOptions, "maxRetries" | "defaultRetryDelay">,
  now: Date,
): PlannedRetry | Error {
  const retries = state.retries + 1;
  const limit = options.maxRetries !== undefined
    ? options.maxRetries
    : task.maxRetries !== undefined
    ? task.maxRetries
    : DEFAULT_MAX_RETRIES;
  checkRetryOptions(options);
  const args = options.args ?? state.args;
  const kwargs = options.kwargs ?? state.kwargs;
  if (limit !== null && retries > limit) {
    if (options.exc !== undefined && options.exc !== null) {
      return options.exc instanceof Error ? options.exc : new Error(String(options.exc));
    }
    return new MaxRetriesExceededError(
      `Can't retry ${state.name}[${state.id}] args:${argsRepr(args, Infinity)} kwargs:${
        kwargsRepr(kwargs, Infinity)
      }`,
    );
  }
  const countdown = options.countdown ??
    (options.eta ? undefined : task.defaultRetryDelay ?? DEFAULT_RETRY_DELAY);
  if (countdown !== undefined && !(Number.isFinite(countdown) && countdown >= 0)) {
    throw new RangeError(`retry countdown must be a number of seconds >= 0, got ${countdown}`);
  }
  // As in Celery, a countdown of 0 does not override an explicit eta.
  if (countdown || !options.eta) {
    const s = countdown ?? 0;
    return { retries, eta: new Date(now.getTime() + s * 1000), when: `in ${s}s`, args, kwargs };
  }
  return { retries, eta: options.eta, when: `at ${options.eta.toISOString()}`, args, kwargs };
}

/** Refuse, in the task that called `ctx.retry()`, what no retry message could carry. */
function checkRetryOptions(options: RetryOptions): void {
  const { eta, args, kwargs } = options as Record<string, unknown>;
  if (eta !== undefined && eta !== null && !(eta instanceof Date && !isNaN(eta.getTime()))) {
    throw new TypeError(`retry eta must be a Date, got ${describeValue(eta)}`);
  }
  if (args !== undefined && args !== null && !Array.isArray(args)) {
    throw new TypeError(`retry args must be an array, got ${describeValue(args)}`);
  }
  if (
    kwargs !== undefined && kwargs !== null && (typeof kwargs !== "object" || Array.isArray(kwargs))
  ) {
    throw new TypeError(`retry kwargs must be a plain object, got ${describeValue(kwargs)}`);
  }
}

/**
 * The retry options of an automatic retry (`autoretryFor`), or `null` when
 * the error does not call for one. `Retry` signals and
 * `MaxRetriesExceededError` never do.
 *
 * @example
 * ```ts
 * import { autoretryOptions } from "@celeriac/celeriac/worker";
 * const options = { autoretryFor: [TypeError], retryBackoff: 2, retryJitter: false };
 * autoretryOptions(options, new TypeError("flaky"), 1); // { exc: TypeError, countdown: 4 }
 * autoretryOptions(options, new RangeError("bug"), 1); // null
 * ```
 *
 * @param task the task's options
 * @param err what the handler threw
 * @param retries retries so far
 * @param random random source for the jitter; default `Math.random`
 * @returns options for {@link planRetry}, or null
 */
export function autoretryOptions(
  task: TaskOptions,
  err: unknown,
  retries: number,
  random?: () => number,
): RetryOptions | null {
  const match = task.autoretryFor;
  if (!match || err instanceof MaxRetriesExceededError || err instanceof Retry) return null;
  const matches = typeof match === "function"
    ? match(err)
    : match.some((cls) => err instanceof (cls as abstract new () => unknown));
  if (!matches) return null;
  const options: RetryOptions = { ...task.retryKwargs, exc: err };
  if (task.retryBackoff) {
    options.countdown = backoffDelay({
      factor: task.retryBackoff === true ? 1 : task.retryBackoff,
      retries,
      maximum: task.retryBackoffMax ?? DEFAULT_RETRY_BACKOFF_MAX,
      jitter: task.retryJitter ?? true,
      random,
    });
  }
  return options;
}
