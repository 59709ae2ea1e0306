/**
 * Task time limits: which limits apply to a task, and the main-thread
 * timers that enforce them (one per running task with a limit).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * The limits of one run, in seconds; `null` for none.
 *
 * @example
 * ```ts
 * import type { TimeLimits } from "@celeriac/celeriac/worker";
 * const limits: TimeLimits = { hard: 60, soft: 50 };
 * ```
 */
export interface TimeLimits {
  /** The Web Worker is terminated and the task fails with `TimeLimitExceeded`. */
  hard: number | null;
  /** The task's `ctx.signal` fires with `SoftTimeLimitExceeded`. */
  soft: number | null;
}

/**
 * Limits configured on a task or a worker (seconds; Celery's
 * `time_limit` / `soft_time_limit`).
 *
 * @example
 * ```ts
 * import type { TimeLimitOptions } from "@celeriac/celeriac/worker";
 * const options: TimeLimitOptions = { timeLimit: 60, softTimeLimit: 50 };
 * ```
 */
export interface TimeLimitOptions {
  /** Hard limit in seconds. */
  timeLimit?: number | null;
  /** Soft limit in seconds. */
  softTimeLimit?: number | null;
}

function positive(v: number | null | undefined): number | null {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : null;
}

/**
 * The limits that apply to a run, each chosen separately: the message's
 * `timelimit` header `[hard, soft]`, else the task's options, else the
 * worker's. Zero, negative and missing values mean "not set here".
 *
 * @example
 * ```ts
 * import { resolveTimeLimits } from "@celeriac/celeriac/worker";
 * resolveTimeLimits([null, 5], { timeLimit: 30 }, { timeLimit: 300, softTimeLimit: 200 });
 * // { hard: 30, soft: 5 }
 * ```
 *
 * @param header the message's `[hard, soft]` header
 * @param task the task's options
 * @param worker the worker's options
 * @returns the limits of this run
 */
export function resolveTimeLimits(
  header: readonly [number | null, number | null],
  task: TimeLimitOptions,
  worker: TimeLimitOptions,
): TimeLimits {
  return {
    hard: positive(header[0]) ?? positive(task.timeLimit) ?? positive(worker.timeLimit),
    soft: positive(header[1]) ?? positive(task.softTimeLimit) ?? positive(worker.softTimeLimit),
  };
}

/**
 * What {@link TimeLimitTimers} calls when a limit is reached.
 *
 * @example
 * ```ts
 * import type { TimeLimitHandlers } from "@celeriac/celeriac/worker";
 * const handlers: TimeLimitHandlers = {
 *   soft: (seq, seconds) => console.log(`#${seq}: soft limit ${seconds}s`),
 *   hard: (seq, seconds) => console.log(`#${seq}: hard limit ${seconds}s`),
 * };
 * ```
 */
export interface TimeLimitHandlers {
  /** The soft limit of run `seq` was reached. */
  soft(seq: number, seconds: number): void;
  /** The hard limit of run `seq` was reached (its soft timer is cleared). */
  hard(seq: number, seconds: number): void;
}

/** Longest delay a platform timer accepts; a longer one fires at once. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * A timer that can wait longer than `setTimeout` allows, re-arming until due.
 *
 * @example
 * ```ts
 * import { clearLongTimeout, type LongTimer, setLongTimeout } from "./time_limits.ts";
 * const timer: LongTimer = setLongTimeout(() => {}, 40 * 86_400_000); // 40 days
 * clearLongTimeout(timer);
 * ```
 */
export interface LongTimer {
  /** The platform timer armed now. */
  id: ReturnType<typeof setTimeout>;
}

/**
 * Call `fn` after `ms` milliseconds, for any delay: one beyond what
 * `setTimeout` accepts (about 24.8 days) is waited for in steps.
 *
 * @example
 * ```ts
 * import { clearLongTimeout, setLongTimeout } from "./time_limits.ts";
 * const timer = setLongTimeout(() => console.log("a month later"), 30 * 86_400_000);
 * clearLongTimeout(timer);
 * ```
 *
 * @param fn what to call
 * @param ms the delay; not a finite number means never
 * @returns a handle for {@link clearLongTimeout}
 */
export function setLongTimeout(fn: () => void, ms: number): LongTimer {
  const due = Date.now() + ms;
  const timer = {} as LongTimer;
  const arm = (wait: number) => {
    timer.id = setTimeout(() => {
      const left = due - Date.now();
      if (left > 0) arm(left);
      else fn();
    }, Math.min(Math.max(0, wait), MAX_DELAY));
  };
  if (Number.isNaN(ms) || ms === Infinity) timer.id = setTimeout(() => {}, 0);
  else arm(ms);
  return timer;
}

/**
 * Cancel a {@link setLongTimeout} timer.
 *
 * @example
 * ```ts
 * import { clearLongTimeout, setLongTimeout } from "./time_limits.ts";
 * clearLongTimeout(setLongTimeout(() => {}, 1000));
 * ```
 *
 * @param timer the handle
 */
export function clearLongTimeout(timer: LongTimer): void {
  clearTimeout(timer.id);
}

/**
 * Log a soft time limit that fired, at warning, as Celery does: a task that
 * returns on its `ctx.signal` leaves a trace of it, and one that ignores it
 * a line before its hard limit.
 *
 * @example
 * ```ts
 * import { logSoftTimeLimit } from "./time_limits.ts";
 * logSoftTimeLimit(5, { task: "tasks.report", id: crypto.randomUUID() });
 * ```
 *
 * @param seconds the soft limit
 * @param run the task's name and id
 */
export function logSoftTimeLimit(seconds: number, run: { task: string; id: string }): void {
  log.warn("Soft time limit ({seconds}s) exceeded for {task}[{id}]: its ctx.signal fires", {
    seconds,
    task: run.task,
    id: run.id,
  });
}

/**
 * One soft and one hard timer per running task, cleared when it finishes.
 *
 * @example
 * ```ts
 * import { TimeLimitTimers } from "@celeriac/celeriac/worker";
 * const timers = new TimeLimitTimers({
 *   soft: (seq) => console.log(`abort #${seq}`),
 *   hard: (seq) => console.log(`kill #${seq}`),
 * });
 * timers.start(1, { hard: 10, soft: 5 });
 * timers.size; // 1
 * timers.clear(1); // it finished in time
 * timers.size; // 0
 * ```
 */
export class TimeLimitTimers {
  readonly #handlers: TimeLimitHandlers;
  readonly #timers = new Map<number, LongTimer[]>();

  /**
   * Create the timers; none runs before {@link TimeLimitTimers.start}.
   *
   * @param handlers called when limits are reached
   */
  constructor(handlers: TimeLimitHandlers) {
    this.#handlers = handlers;
  }

  /** How many runs have timers. */
  get size(): number {
    return this.#timers.size;
  }

  /**
   * Start the timers of a run (nothing when it has no limits).
   *
   * @param seq the run
   * @param limits its limits
   */
  start(seq: number, limits: TimeLimits): void {
    const timers: LongTimer[] = [];
    const { hard, soft } = limits;
    if (soft !== null && (hard === null || soft < hard)) {
      timers.push(setLongTimeout(() => this.#handlers.soft(seq, soft), soft * 1000));
    }
    if (hard !== null) {
      timers.push(setLongTimeout(() => {
        this.clear(seq);
        this.#handlers.hard(seq, hard);
      }, hard * 1000));
    }
    if (timers.length) this.#timers.set(seq, timers);
  }

  /**
   * Clear the timers of a run that finished (or was abandoned).
   *
   * @param seq the run
   */
  clear(seq: number): void {
    const timers = this.#timers.get(seq);
    if (!timers) return;
    for (const t of timers) clearLongTimeout(t);
    this.#timers.delete(seq);
  }

  /** Clear every timer. */
  clearAll(): void {
    for (const seq of [...this.#timers.keys()]) this.clear(seq);
  }
}
