/**
 * How long tasks hold their thread before returning or awaiting (their
 * blocking time), as a running average (per task name for the threads
 * pool), and what follows from it for the
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
 * ```ts
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
    for (const o of outcomes) if (o.blocked !== undefined) this.observeOne(o.blocked);
  }

  /**
   * Learn from one finished task (as {@link BlockingAverage.observe} of one
   * outcome, without allocating one).
   *
   * @example
   * ```ts
   * const avg = new BlockingAverage();
   * avg.observeOne(5);
   * avg.ms; // 5
   * ```
   *
   * @param blocked its blocking time in milliseconds
   */
  observeOne(blocked: number): void {
    this.#ms = this.#ms === null ? blocked : this.#ms + SMOOTHING * (blocked - this.#ms);
  }
}

/**
 * The blocking time of each task name, as a running average per name (at
 * most {@link MAX_NAMES} names, the oldest seen forgotten first): a queue
 * that mixes short and CPU-bound tasks gets each its own estimate, so a
 * take of CPU-bound tasks right after a run of short ones is spread over
 * the Web Workers rather than sent to one as if it were short. Null for a
 * name not seen finish yet.
 *
 * @example
 * ```ts
 * const byName = new BlockingByName();
 * byName.observe("tasks.noop", 0.01);
 * byName.ms("tasks.noop"); // 0.01
 * byName.ms("tasks.crunch"); // null: not seen finish
 * ```
 */
export class BlockingByName {
  readonly #averages = new Map<string, BlockingAverage>();

  /**
   * The average of a task name in milliseconds.
   *
   * @param name the task name
   * @returns the average, null until a task of that name has finished
   */
  ms(name: string): number | null {
    return this.#averages.get(name)?.ms ?? null;
  }

  /**
   * Learn from one finished task.
   *
   * @param name its task name
   * @param blocked its blocking time in milliseconds (undefined is skipped)
   */
  observe(name: string, blocked: number | undefined): void {
    if (blocked === undefined) return;
    let avg = this.#averages.get(name);
    if (!avg) {
      if (this.#averages.size >= MAX_NAMES) {
        this.#averages.delete(this.#averages.keys().next().value!);
      }
      this.#averages.set(name, avg = new BlockingAverage());
    }
    avg.observeOne(blocked);
  }
}

/**
 * Task names {@link BlockingByName} keeps an average for.
 *
 * @example
 * ```ts
 * MAX_NAMES; // 1024
 * ```
 */
export const MAX_NAMES = 1024;

/**
 * Cut the tasks handed to one Web Worker into messages of about
 * {@link MESSAGE_BLOCKING_MS} of blocking work each, in order; tasks whose
 * blocking time is unknown add nothing to a message's (so while none is
 * known they all go in one).
 *
 * @example
 * ```ts
 * messagesOf([1, 2, 3], () => 5); // [[1], [2], [3]]: 5 ms tasks go one to a message
 * messagesOf([1, 2, 3], () => 0.01); // [[1, 2, 3]]
 * messagesOf([1, 2, 3], () => null); // [[1, 2, 3]]
 * ```
 *
 * @param tasks the tasks, in the order they run
 * @param blockedOf the average blocking time of a task, null when unknown
 * @returns the messages, each a non-empty slice of `tasks`
 */
export function messagesOf<T>(tasks: T[], blockedOf: (task: T) => number | null): T[][] {
  const out: T[][] = [];
  let message: T[] = [];
  let work = 0;
  for (const t of tasks) {
    const ms = blockedOf(t);
    const w = ms === null ? 0 : Math.max(ms, 0.001);
    if (message.length && work + w > MESSAGE_BLOCKING_MS + 1e-9) {
      out.push(message);
      message = [];
      work = 0;
    }
    message.push(t);
    work += w;
  }
  out.push(message);
  return out;
}

/**
 * How many more tasks than the least loaded Web Worker the one sent the
 * previous task of a take may hold and still be sent the next: tasks that
 * block for microseconds (a drain of short tasks) go many to one Web
 * Worker — a take in one message, its outcomes back in one, one result
 * store and one acknowledgement for them instead of one per Web Worker, each
 * a wake-up of the main thread, a socket write and a post — as long as the
 * difference is at most about {@link MESSAGE_BLOCKING_MS} of blocking work.
 * 1 (each task to the least loaded Web Worker) while the blocking time is
 * unknown or a task blocks for a millisecond or more. The pool asks with
 * the task's own name's average ({@link BlockingByName}).
 *
 * @example
 * ```ts
 * spreadLead(null, 64); // 1
 * spreadLead(5, 64); // 1
 * spreadLead(0.01, 64); // 64: at most the slots of a Web Worker
 * ```
 *
 * @param blockedMs average blocking time of a task, null when unknown
 * @param slots tasks one Web Worker may hold
 * @returns the lead, at least 1
 */
export function spreadLead(blockedMs: number | null, slots: number): number {
  if (blockedMs === null) return 1;
  return Math.max(1, Math.min(slots, Math.floor(MESSAGE_BLOCKING_MS / Math.max(blockedMs, 0.001))));
}
