/**
 * How long tasks hold their thread before returning or awaiting (their
 * blocking time), as a running average, and what follows from it for the
 * threads pool: how many tasks travel in one message to a Web Worker.
 *
 * A Web Worker runs every synchronous task of one message in one turn and
 * posts their outcomes together when the turn ends. The main thread learns
 * that slots are free — and takes and sends more tasks — only then: if one
 * message held every task of a Web Worker, it idles for that refill (a
 * wake-up of the main thread and a broker round trip) after each message.
 * Messages of about {@link MESSAGE_BLOCKING_MS} of blocking work let
 * outcomes come back while the tasks of the messages behind them are still
 * to run (the Web Worker reports them a few at a time: see `BatchRunner`);
 * tasks that block for microseconds (a drain of short tasks) still travel
 * many to a message.
 *
 * @module
 */

/** Weight of the newest observation in the running average. */
const SMOOTHING = 0.2;

/**
 * Blocking work one message to a Web Worker holds at most (unless a
 * single task blocks longer), in milliseconds.
 *
 * @example
 * ```ts ignore
 * MESSAGE_BLOCKING_MS; // 1
 * ```
 */
export const MESSAGE_BLOCKING_MS = 1;

/**
 * Running average of the blocking time of finished tasks.
 *
 * @example
 * ```ts ignore
 * const avg = new BlockingAverage();
 * avg.ms; // null: no task has finished
 * avg.observe([{ blocked: 5 }, { runtime: 3 }]); // outcomes without `blocked` are skipped
 * avg.ms; // 5
 * ```
 */
export class BlockingAverage {
  #ms: number | null = null;

  /** The average in milliseconds; null until a task has finished. */
  get ms(): number | null {
    return this.#ms;
  }

  /**
   * Learn from finished tasks.
   *
   * @param outcomes finished tasks (those without `blocked` are skipped)
   */
  observe(outcomes: readonly { blocked?: number }[]): void {
    for (const o of outcomes) {
      if (o.blocked === undefined) continue;
      this.#ms = this.#ms === null ? o.blocked : this.#ms + SMOOTHING * (o.blocked - this.#ms);
    }
  }
}

/** Task names whose blocking time {@link BlockingTimes} keeps at most. */
const MAX_NAMES = 1024;

/**
 * Running average of the blocking time of each task name, and what follows
 * for the threads pool: whether a task may share a message to a Web Worker
 * with others, and how much of the message's blocking work it takes.
 *
 * The averages are per name, not one over all tasks: a name that blocks
 * for long (or is not known yet) goes alone however short the others are.
 * At most 1024 names are kept (the worker's registered tasks; the name
 * learnt longest ago is forgotten first).
 *
 * @example
 * ```ts ignore
 * const times = new BlockingTimes();
 * times.share({ task: "t.add" }); // null: not known yet, goes alone
 * times.observe("t.add", 0.05);
 * times.observe("t.crunch", 40);
 * times.share({ task: "t.add" }); // 0.05: may share a message
 * times.share({ task: "t.crunch" }); // null: blocks for long, goes alone
 * times.share({ task: "t.add", timeLimits: { hard: 5, soft: null } }); // null
 * ```
 */
export class BlockingTimes {
  readonly #ms = new Map<string, number>();
  readonly #maxNames: number;

  /**
   * @param maxNames task names kept at most (default 1024)
   */
  constructor(maxNames: number = MAX_NAMES) {
    this.#maxNames = maxNames;
  }

  /**
   * The average blocking time of a task name.
   *
   * @param task the task name
   * @returns milliseconds; null until a task of that name has finished
   */
  ms(task: string): number | null {
    return this.#ms.get(task) ?? null;
  }

  /**
   * Learn from a finished task.
   *
   * @param task its name
   * @param blocked milliseconds it held its thread (undefined: skipped)
   */
  observe(task: string, blocked: number | undefined): void {
    if (blocked === undefined) return;
    const ms = this.#ms.get(task);
    if (ms !== undefined) {
      this.#ms.set(task, ms + SMOOTHING * (blocked - ms));
      return;
    }
    if (this.#ms.size >= this.#maxNames) this.#ms.delete(this.#ms.keys().next().value!);
    this.#ms.set(task, blocked);
  }

  /**
   * The blocking work a task adds to a message it shares with others, or
   * null when it goes alone: its name blocks for
   * {@link MESSAGE_BLOCKING_MS} or more, or is not known yet, or the task
   * has a time limit (its clock starts when it is sent, so it must not
   * wait behind others in the same message).
   *
   * @param req the task's name and time limits
   * @returns milliseconds, or null
   */
  share(req: { task: string; timeLimits?: { hard: number | null; soft: number | null } }):
    | number
    | null {
    const limits = req.timeLimits;
    if (limits && (limits.hard !== null || limits.soft !== null)) return null;
    const ms = this.ms(req.task);
    return ms === null || ms >= MESSAGE_BLOCKING_MS ? null : ms;
  }
}
