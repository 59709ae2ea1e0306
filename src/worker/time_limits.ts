/**
 * Task time limits: which limits apply to a task, and the main-thread
 * timer that enforces them (one for every running task with a limit).
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

/** Longest delay a platform timer accepts; a longer one fires at once. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * The pending limits of one kind and one length (say every hard limit of
 * 60 s): run → when it is due (`performance.now()` milliseconds). Runs are
 * added as they start, so a lane's insertion order is its due order and its
 * first entry the next due.
 */
interface Lane {
  kind: "soft" | "hard";
  seconds: number;
  due: Map<number, number>;
}

/** The lanes a started run is waiting in. */
interface Run {
  soft: Lane | undefined;
  hard: Lane | undefined;
}

/**
 * The soft and hard limits of running tasks, cleared when they finish. One
 * platform timer serves every run: limits of the same kind and length are
 * due in the order they started (a lane each), so starting and clearing a
 * run are a few map operations, and the timer is armed for the earliest
 * due limit. It is not re-armed when that run finishes first (the usual
 * case): it fires at the stale time, finds nothing due and is armed for the
 * next. A limit fires when that timer does, as a timer of its own would.
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
  readonly #runs = new Map<number, Run>();
  readonly #soft = new Map<number, Lane>();
  readonly #hard = new Map<number, Lane>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the timer is armed for (`performance.now()` ms); Infinity when it is not. */
  #armedFor = Infinity;

  /**
   * Create the timers; none runs before {@link TimeLimitTimers.start}.
   *
   * @param handlers called when limits are reached
   */
  constructor(handlers: TimeLimitHandlers) {
    this.#handlers = handlers;
  }

  /** How many runs have limits pending. */
  get size(): number {
    return this.#runs.size;
  }

  /**
   * Start the limits of a run (nothing when it has none). A soft limit
   * not shorter than the hard one is never reached and is not kept.
   *
   * @param seq the run
   * @param limits its limits
   */
  start(seq: number, limits: TimeLimits): void {
    const { hard, soft } = limits;
    const useSoft = soft !== null && (hard === null || soft < hard);
    if (!useSoft && hard === null) return;
    if (this.#runs.has(seq)) this.clear(seq);
    const now = performance.now();
    const run: Run = {
      soft: useSoft ? this.#enter(this.#soft, "soft", soft, seq, now) : undefined,
      hard: hard === null ? undefined : this.#enter(this.#hard, "hard", hard, seq, now),
    };
    this.#runs.set(seq, run);
    const due = now + 1000 * (useSoft ? soft : hard!);
    if (due < this.#armedFor) this.#arm(due, now);
  }

  #enter(
    lanes: Map<number, Lane>,
    kind: Lane["kind"],
    seconds: number,
    seq: number,
    now: number,
  ): Lane {
    let lane = lanes.get(seconds);
    if (!lane) lanes.set(seconds, lane = { kind, seconds, due: new Map() });
    lane.due.set(seq, now + seconds * 1000);
    return lane;
  }

  /**
   * Clear the limits of a run that finished (or was abandoned).
   *
   * @param seq the run
   */
  clear(seq: number): void {
    const run = this.#runs.get(seq);
    if (!run) return;
    this.#runs.delete(seq);
    run.soft?.due.delete(seq);
    run.hard?.due.delete(seq);
    if (this.#runs.size === 0) this.clearAll();
  }

  /** Clear every run's limits. */
  clearAll(): void {
    this.#runs.clear();
    for (const lanes of [this.#soft, this.#hard]) {
      for (const lane of lanes.values()) lane.due.clear();
      lanes.clear();
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  #arm(due: number, now: number): void {
    clearTimeout(this.#timer);
    this.#armedFor = due;
    this.#timer = setTimeout(() => this.#fire(), Math.min(Math.max(0, due - now), MAX_DELAY));
  }

  /** Fire every limit now due, earliest first, and arm the timer for the next one. */
  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = performance.now();
    const due: { at: number; seq: number; lane: Lane }[] = [];
    for (const lanes of [this.#soft, this.#hard]) {
      for (const lane of lanes.values()) {
        for (const [seq, at] of lane.due) {
          if (at > now) break;
          due.push({ at, seq, lane });
        }
      }
    }
    due.sort((a, b) => a.at - b.at);
    for (const { seq, lane } of due) {
      // A handler before this one may have cleared it (a hard limit drops its Web Worker's runs).
      if (!lane.due.has(seq)) continue;
      if (lane.kind === "hard") {
        this.clear(seq);
        this.#handlers.hard(seq, lane.seconds);
      } else {
        lane.due.delete(seq);
        this.#runs.get(seq)!.soft = undefined;
        this.#handlers.soft(seq, lane.seconds);
      }
    }
    let next = Infinity;
    for (const lanes of [this.#soft, this.#hard]) {
      for (const [seconds, lane] of lanes) {
        const first = lane.due.values().next();
        if (first.done) lanes.delete(seconds);
        else next = Math.min(next, first.value);
      }
    }
    if (next < this.#armedFor) this.#arm(next, performance.now());
  }
}
