/**
 * Task time limits: which limits apply to a task, and the main-thread
 * timer that enforces them (one for every running task with a limit).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { MAX_TIMER_MS } from "../broker/long_timeout.ts";
import { oneLine } from "./log_values.ts";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * The limits of one run, in seconds; `null` for none (as is a value that
 * is not a finite number).
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

/** A limit, or null when it is none or not a finite number (never reached). */
function finite(v: number | null): number | null {
  return v !== null && Number.isFinite(v) ? v : null;
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
    task: oneLine(run.task),
    id: oneLine(run.id),
  });
}

/** The limits of one run. */
interface Run {
  /** Its soft limit in seconds; null when none, or once fired. */
  soft: number | null;
  /** Its hard limit in seconds; null when none. */
  hard: number | null;
  /** When it started (`performance.now()` ms); undefined while not known to have started. */
  startedAt: number | undefined;
  /** When it was last known not to have started (`performance.now()` ms). */
  waiting: number;
}

/**
 * The soft and hard limits of running tasks, cleared when they finish. One
 * platform timer serves every run, armed for the earliest limit due:
 * starting and clearing a run are a map operation each, and the timer is
 * not re-armed when that run finishes first (the usual case): it fires at
 * the stale time, finds nothing due and is armed for the next. A limit
 * fires when that timer does, as a timer of its own would.
 *
 * A run whose start is not reported ({@link TimeLimitTimers.expect}) is
 * looked up with `startedAt` when its limits could first be due had it
 * started then, and again each time they could be, until it has started:
 * a Web Worker writes the start of a task in memory the main thread reads
 * (`start_table.ts`) instead of posting it.
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
  readonly #startedAt: (seq: number) => number | null;
  readonly #finished: (seq: number) => boolean;
  readonly #runs = new Map<number, Run>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the timer is armed for (`performance.now()` ms); Infinity when it is not. */
  #armedFor = Infinity;

  /**
   * Create the timers; none runs before {@link TimeLimitTimers.start}.
   *
   * @param handlers called when limits are reached
   * @param startedAt when an expected run started (`performance.now()` ms),
   *   null while it has not; default: never known, only started runs are timed
   * @param finished whether a run's code has finished though it is not
   *   cleared yet (its outcome on its way): its limits are then dropped; default never
   */
  constructor(
    handlers: TimeLimitHandlers,
    startedAt: (seq: number) => number | null = () => null,
    finished: (seq: number) => boolean = () => false,
  ) {
    this.#handlers = handlers;
    this.#startedAt = startedAt;
    this.#finished = finished;
  }

  /** How many runs have limits pending. */
  get size(): number {
    return this.#runs.size;
  }

  /**
   * Start the limits of a run now (nothing when it has none). A limit that
   * is not a finite number (NaN, Infinity) is never reached, as `null`; nor
   * is a soft limit not shorter than the hard one: neither is kept.
   *
   * @param seq the run
   * @param limits its limits
   */
  start(seq: number, limits: TimeLimits): void {
    this.#add(seq, limits, true);
  }

  /**
   * Keep the limits of a run that will start at a time `startedAt` tells.
   *
   * @param seq the run
   * @param limits its limits
   */
  expect(seq: number, limits: TimeLimits): void {
    this.#add(seq, limits, false);
  }

  #add(seq: number, limits: TimeLimits, started: boolean): void {
    const hard = finite(limits.hard);
    let soft = finite(limits.soft);
    if (soft !== null && hard !== null && soft >= hard) soft = null;
    if (soft === null && hard === null) return;
    const now = performance.now();
    const run: Run = { soft, hard, startedAt: started ? now : undefined, waiting: now };
    this.#runs.set(seq, run);
    const due = now + 1000 * (soft ?? hard!);
    if (due < this.#armedFor) this.#arm(due, now);
  }

  /**
   * Clear the limits of a run that finished (or was abandoned).
   *
   * @param seq the run
   */
  clear(seq: number): void {
    if (this.#runs.delete(seq) && this.#runs.size === 0) this.clearAll();
  }

  /** Clear every run's limits. */
  clearAll(): void {
    this.#runs.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  #arm(due: number, now: number): void {
    clearTimeout(this.#timer);
    this.#armedFor = due;
    this.#timer = setTimeout(() => this.#fire(), Math.min(Math.max(0, due - now), MAX_TIMER_MS));
  }

  /** When the next limit of a run is due; a run not started yet as if it started when last seen waiting. */
  #due(run: Run): number {
    return (run.startedAt ?? run.waiting) + 1000 * (run.soft ?? run.hard!);
  }

  /** Fire every limit now due, earliest first, and arm the timer for the next one. */
  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = performance.now();
    const due: { at: number; seq: number; hard: boolean }[] = [];
    for (const [seq, run] of this.#runs) {
      if (run.startedAt === undefined) {
        const at = this.#startedAt(seq);
        if (at === null) run.waiting = now;
        else run.startedAt = at;
      }
      if (run.startedAt === undefined) continue;
      // Read only when a limit is looked at: a run that finished in time costs nothing more.
      if (this.#finished(seq)) {
        this.#runs.delete(seq);
        continue;
      }
      const soft = run.soft === null ? Infinity : run.startedAt + 1000 * run.soft;
      const hard = run.hard === null ? Infinity : run.startedAt + 1000 * run.hard;
      if (soft <= now) due.push({ at: soft, seq, hard: false });
      if (hard <= now) due.push({ at: hard, seq, hard: true });
    }
    due.sort((a, b) => a.at - b.at);
    for (const { seq, hard } of due) {
      // A handler before this one may have cleared it (a hard limit drops its Web Worker's runs).
      const run = this.#runs.get(seq);
      if (!run) continue;
      if (hard) {
        this.clear(seq);
        this.#handlers.hard(seq, run.hard!);
      } else if (run.soft !== null) {
        const seconds = run.soft;
        run.soft = null;
        if (run.hard === null) this.clear(seq);
        this.#handlers.soft(seq, seconds);
      }
    }
    let next = Infinity;
    for (const run of this.#runs.values()) next = Math.min(next, this.#due(run));
    if (next < this.#armedFor) this.#arm(next, performance.now());
  }
}
