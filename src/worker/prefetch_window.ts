/**
 * How many messages a worker holds at once. Holding many makes a drain of
 * short tasks fast (fewer round trips to the broker); holding many long
 * CPU-bound tasks starves other workers, since a Web Worker runs
 * synchronous code one task at a time while the rest wait in its queue.
 *
 * By default the window adapts to how long tasks block their Web Worker:
 * the running task plus about {@link PREFETCH_TARGET_MS} of blocking work
 * waiting behind it (so a Web Worker never idles for a broker round trip),
 * between 1 and the maximum (`--prefetch`, default 64). While that window
 * is narrowed by blocking time, the worker takes again once about half of
 * it is free ({@link PrefetchWindow.refill}) rather than one message per finished
 * task: on 2 cores, each take and each settle of one CPU-bound task woke the
 * main thread and Redis, which took their CPU from the Web Workers. Until a task has
 * finished it holds {@link PREFETCH_START} per Web Worker (Celery's default
 * multiplier): few enough that a first burst of long tasks is shared with
 * other workers, enough that a long async task does not keep the tasks
 * behind it waiting (blocking time is only known when a task finishes). It
 * opens up as soon as tasks prove short. `--prefetch-multiplier N` fixes it
 * at N, as Celery's `worker_prefetch_multiplier` does.
 *
 * @module
 */

import { BlockingAverage } from "./blocking_time.ts";

/**
 * Blocking work the adaptive window lets wait behind each Web Worker's
 * running task, in milliseconds.
 *
 * @example
 * ```ts
 * PREFETCH_TARGET_MS; // 50
 * ```
 */
export const PREFETCH_TARGET_MS = 50;

/**
 * Messages per Web Worker before any task has finished: Celery's default
 * `worker_prefetch_multiplier`.
 *
 * @example
 * ```ts
 * PREFETCH_START; // 4
 * ```
 */
export const PREFETCH_START = 4;

/**
 * Most milliseconds the worker holds off a take while it waits for a
 * refill ({@link PrefetchWindow.refill}): the slots it waits for may be
 * held by tasks that await for long (I/O), not by blocking work that will
 * soon be done.
 *
 * @example
 * ```ts
 * REFILL_WAIT_MS; // 25
 * ```
 */
export const REFILL_WAIT_MS = PREFETCH_TARGET_MS / 2;

/**
 * Most messages each Web Worker holds by default (`--prefetch` not given):
 * its task slots, and the adaptive window's ceiling. 64 rather than 32: a
 * drain of short tasks then takes twice as many per take script (a take
 * follows each Web Worker's batch of outcomes: ~60 tasks instead of ~30), so
 * each wake-up of Redis, of a Web Worker and of the main thread serves twice
 * the tasks; the Redis drain went 1.17× as fast (6 alternated rounds,
 * 1.12–1.27×) at the same peak RSS.
 * An async task set that never blocks runs up to 64 at a time per Web Worker.
 *
 * @example
 * ```ts
 * DEFAULT_PREFETCH_MAX; // 64
 * ```
 */
export const DEFAULT_PREFETCH_MAX = 64;

/** Options of {@link PrefetchWindow}. */
export interface PrefetchWindowOptions {
  /** Web Workers (or 1 for the inline pool); a function when the pool can be resized. */
  size: number | (() => number);
  /** Most messages per Web Worker (its task slots). */
  max: number;
  /** A fixed number per Web Worker (Celery's prefetch multiplier); default: adaptive. */
  fixed?: number;
}

/**
 * The number of messages a worker may hold, fed with task outcomes.
 *
 * @example
 * ```ts
 * const w = new PrefetchWindow({ size: 2, max: 32 });
 * w.limit; // 8: Celery's default 4 per Web Worker until a task has finished
 * w.observe([{ blocked: 0.05 }]);
 * w.limit; // 64
 * w.refill; // 1: the window is open, take whenever a slot is free
 * ```
 */
export class PrefetchWindow {
  readonly #size: () => number;
  readonly #max: number;
  readonly #fixed: number | undefined;
  readonly #blocked = new BlockingAverage();
  /** When the worker began waiting for a refill with a slot free; null when not waiting. */
  #since: number | null = null;

  /** @param options pool size, slots per Web Worker, fixed multiplier */
  constructor(options: PrefetchWindowOptions) {
    const size = options.size;
    this.#size = typeof size === "number" ? () => size : size;
    this.#max = options.max;
    this.#fixed = options.fixed === undefined ? undefined : Math.min(options.fixed, options.max);
  }

  /** Messages the worker may hold now (running or waiting). */
  get limit(): number {
    return this.#size() * this.perWorker;
  }

  /** Messages each Web Worker may hold now. */
  get perWorker(): number {
    if (this.#fixed !== undefined) return this.#fixed;
    const blocked = this.#blocked.ms;
    if (blocked === null) return Math.min(PREFETCH_START, this.#max);
    const queued = Math.floor(PREFETCH_TARGET_MS / Math.max(blocked, 0.001));
    return Math.max(1, Math.min(this.#max, 1 + queued));
  }

  /**
   * Free slots the worker waits for before it takes again, while the window
   * is narrowed by blocking time (CPU-bound tasks): about half the target's
   * worth of finished work, at most half the window, so that they are taken
   * a few at a time rather than one per finished task, while each Web
   * Worker still has about half the target queued, and a take follows the
   * last within about that time (a RabbitMQ consumer's buffer goes back to
   * its queue 50 ms after a take). 1 otherwise (fixed multiplier, short or
   * async tasks, nothing known yet). The worker waits for it at most
   * {@link REFILL_WAIT_MS} ({@link PrefetchWindow.wait}).
   */
  get refill(): number {
    const blocked = this.#blocked.ms;
    if (this.#fixed !== undefined || blocked === null) return 1;
    const per = this.perWorker;
    if (per >= this.#max) return 1;
    const size = this.#size();
    const work = Math.floor(size * PREFETCH_TARGET_MS / 2 / Math.max(blocked, 0.001));
    return Math.max(1, Math.min(Math.floor(size * per / 2), work));
  }

  /**
   * How long the worker waits before it takes, with `room` of its `slots`
   * free: Infinity while none is free, 0 to take now; else until
   * {@link PrefetchWindow.refill} slots are free, but at most
   * {@link REFILL_WAIT_MS} after it began waiting with a slot free.
   *
   * @example
   * ```ts
   * const w = new PrefetchWindow({ size: 2, max: 32 });
   * w.observe(Array.from({ length: 60 }, () => ({ blocked: 5 })));
   * w.wait(3, w.limit, 0); // 25: 3 free, waiting for 10
   * w.wait(3, w.limit, 25); // 0: take the 3
   * ```
   *
   * @param room free slots
   * @param slots slots of the window
   * @param now `performance.now()`
   * @returns milliseconds
   */
  wait(room: number, slots: number, now: number = performance.now()): number {
    if (room <= 0) {
      this.#since = null;
      return Infinity;
    }
    if (room < Math.min(slots, this.refill)) {
      this.#since ??= now;
      const left = this.#since + REFILL_WAIT_MS - now;
      if (left > 0) return left;
    }
    this.#since = null;
    return 0;
  }

  /**
   * Learn from finished tasks how long they blocked their Web Worker.
   *
   * @param outcomes finished tasks (those without `blocked` are skipped)
   */
  observe(outcomes: readonly { blocked?: number }[]): void {
    this.#blocked.observe(outcomes);
  }
}
