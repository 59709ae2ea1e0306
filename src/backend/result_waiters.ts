/**
 * The waits for results a backend holds, by task: each task's waiters are
 * added and dropped one by one, and taken together when its result is ready
 * (or the backend closes). A task is listed only while something waits for
 * it. Bookkeeping only: reading, subscribing and notifying stay with each
 * backend.
 *
 * @module
 */

import type { ResultMeta } from "../protocol/result_meta.ts";

/**
 * One wait for a task's result.
 *
 * @example
 * ```ts ignore
 * const { promise, resolve, reject } = Promise.withResolvers<ResultMeta>();
 * const waiter: ResultWaiter = { resolve, reject, onState };
 * ```
 */
export interface ResultWaiter {
  /** Ends the wait with the ready meta. */
  resolve(meta: ResultMeta): void;
  /** Ends the wait with a failure (an abort, a close). */
  reject(reason: unknown): void;
  /** Told each state stored before the ready one, when the wait follows states. */
  onState?(meta: ResultMeta): void;
}

/**
 * The waiters of one backend, by task id.
 *
 * @example
 * ```ts ignore
 * const waiters = new ResultWaiters();
 * waiters.add(taskId, waiter); // true: the task's first waiter
 * waiters.progress(taskId, startedMeta); // waiter.onState?.(startedMeta)
 * for (const w of waiters.take(taskId)) w.resolve(readyMeta);
 * waiters.has(taskId); // false
 * ```
 */
export class ResultWaiters {
  readonly #byTask = new Map<string, Set<ResultWaiter>>();

  /** How many tasks are waited for. */
  get size(): number {
    return this.#byTask.size;
  }

  /** Whether anything waits for `taskId`. */
  has(taskId: string): boolean {
    return this.#byTask.has(taskId);
  }

  /** The ids of the tasks waited for. */
  taskIds(): IterableIterator<string> {
    return this.#byTask.keys();
  }

  /** The task's waiters (none when nothing waits for it), still waiting. */
  of(taskId: string): Iterable<ResultWaiter> {
    return this.#byTask.get(taskId) ?? [];
  }

  /**
   * Add a waiter of `taskId`.
   *
   * @returns whether it is the task's first (nothing waited for it before)
   */
  add(taskId: string, waiter: ResultWaiter): boolean {
    const set = this.#byTask.get(taskId);
    if (set) {
      set.add(waiter);
      return false;
    }
    this.#byTask.set(taskId, new Set<ResultWaiter>().add(waiter));
    return true;
  }

  /**
   * Drop a waiter of `taskId` (its wait ended otherwise).
   *
   * @returns whether it was the task's last: nothing waits for the task now
   */
  drop(taskId: string, waiter: ResultWaiter): boolean {
    const set = this.#byTask.get(taskId);
    if (!set?.delete(waiter) || set.size > 0) return false;
    this.#byTask.delete(taskId);
    return true;
  }

  /**
   * Take every waiter of `taskId`: nothing waits for the task afterwards.
   *
   * @returns its waiters, none when nothing waited for it
   */
  take(taskId: string): Iterable<ResultWaiter> {
    const set = this.#byTask.get(taskId);
    if (!set) return [];
    this.#byTask.delete(taskId);
    return set;
  }

  /** Hand a state stored before the ready one to the task's waiters that follow states. */
  progress(taskId: string, meta: ResultMeta): void {
    for (const w of this.of(taskId)) w.onState?.(meta);
  }

  /** Reject every waiter with `reason` and forget them all (the backend closes). */
  rejectAll(reason: unknown): void {
    for (const set of this.#byTask.values()) for (const w of set) w.reject(reason);
    this.#byTask.clear();
  }
}
