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

/**
 * Cut the tasks handed to one Web Worker into messages of about
 * {@link MESSAGE_BLOCKING_MS} of blocking work each, in order; one message
 * while the blocking time is unknown.
 *
 * @example
 * ```ts ignore
 * messagesOf([1, 2, 3], 5); // [[1], [2], [3]]: 5 ms tasks go one to a message
 * messagesOf([1, 2, 3], 0.01); // [[1, 2, 3]]
 * messagesOf([1, 2, 3], null); // [[1, 2, 3]]
 * ```
 *
 * @param tasks the tasks, in the order they run
 * @param blockedMs average blocking time of a task, null when unknown
 * @returns the messages, each a non-empty slice of `tasks`
 */
export function messagesOf<T>(tasks: T[], blockedMs: number | null): T[][] {
  const per = blockedMs === null
    ? tasks.length
    : Math.max(1, Math.floor(MESSAGE_BLOCKING_MS / Math.max(blockedMs, 0.001)));
  if (per >= tasks.length) return [tasks];
  const out: T[][] = [];
  for (let i = 0; i < tasks.length; i += per) out.push(tasks.slice(i, i + per));
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
 * unknown or a task blocks for a millisecond or more.
 *
 * @example
 * ```ts ignore
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
