/**
 * What every execution pool is ({@link Pool}) and what it reports back
 * ({@link PoolEvents}). The pools: `ThreadPool` (Web Workers, the
 * default) in `thread_pool.ts`, `InlinePool` (the main thread) in
 * `inline_pool.ts`.
 *
 * @module
 */

import type { PublishTarget } from "../broker/port.ts";
import type { Message } from "../protocol/message.ts";
import type { ResultTuple } from "../protocol/signature.ts";
import type { RunOutcome, RunRequest } from "./executor.ts";
import type { LeakedThread } from "./leaked_threads.ts";

/**
 * The most Web Workers a pool keeps, across its sandbox groups: each is a
 * thread with a V8 heap of its own (about 10 MB of memory apiece), so a
 * `pool_grow 1000000000` or `autoscale` typo is refused instead of taking
 * the host's memory. Concurrency beyond the Web Workers comes from their
 * slots (`--prefetch`).
 *
 * @example
 * ```ts
 * import { MAX_POOL_SIZE } from "./pool.ts";
 * MAX_POOL_SIZE; // 1024
 * ```
 */
export const MAX_POOL_SIZE = 1024;

/**
 * What a pool reports back to the consumer.
 *
 * @example Receiving outcomes from an inline pool
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { InlinePool, type PoolEvents } from "@celeriac/celeriac/worker";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const events: PoolEvents = {
 *   onOutcomes: (outcomes) => {
 *     for (const o of outcomes) console.log(o.seq, o.ok ? "ok" : o.exc?.exc_type);
 *   },
 *   onPublish: (message, target) => app.publish(message, target),
 *   onLost: (seqs, reason) => console.warn(`tasks ${seqs.join(", ")} lost: ${reason}`),
 *   onTimeLimit: (seq, seconds, abandoned) =>
 *     console.warn(`task ${seq} ran past ${seconds}s; handed on: ${abandoned.join(", ")}`),
 * };
 * const pool = new InlinePool(app, 10, events);
 * await pool.start();
 * await pool.close();
 * ```
 */
export interface PoolEvents {
  /** Outcomes of finished tasks. */
  onOutcomes(outcomes: RunOutcome[]): void;
  /** Publish a message for a task (tasks sent from tasks); `child` and `queue` as a `Publisher`'s. */
  onPublish(
    message: Message,
    target: PublishTarget,
    child?: ResultTuple | null,
    queue?: string,
  ): Promise<void>;
  /**
   * A message a task running on the worker's own thread (the inline pool)
   * published itself, `child` as a `Publisher`'s: noted as `onPublish`
   * notes one. Default: not noted.
   */
  onSent?(message: Message, child?: ResultTuple | null): void;
  /**
   * Store a state that running task `seq` reported (`ctx.updateState`), or,
   * `final`, its own FAILURE before its in-process errbacks (with the
   * children it sent). Default: not stored.
   */
  onState?(seq: number, status: string, meta: string, final?: boolean): Promise<void>;
  /**
   * A Web Worker died: `seqs` started there and did not finish;
   * `notStarted` (default none) it held before they started, and they did
   * not run: they are handed on (run on another Web Worker; a revoked one
   * is put back in its queue).
   */
  onLost(seqs: number[], reason: string, notStarted?: number[]): void;
  /**
   * Task `seq` exceeded its hard time limit (or was terminated by a
   * revoke; `seconds` is then 0) and was stopped. `abandoned`
   * are other tasks that were stopped with it before they started (they
   * shared its Web Worker): they did not run and are handed on (run on
   * another Web Worker; a revoked one is put back in its queue). Those of
   * its Web Worker that had started are reported to
   * `onLost` first.
   */
  onTimeLimit(seq: number, seconds: number, abandoned: number[]): void;
  /**
   * The thread of a Web Worker terminated for a task (hard time limit,
   * revoke with terminate) still runs: Deno does not stop a synchronous
   * loop (see `thread_leaks.ts`). `count` threads are leaked now.
   * Default: not reported.
   */
  onThreadLeak?(leak: LeakedThread, count: number): void;
}

/**
 * A pool runs task requests and reports outcomes.
 *
 * @example Handing a pool no more than it can hold
 * ```ts
 * import type { Pool, RunRequest } from "@celeriac/celeriac/worker";
 * // Run what fits in the pool's free slots; return the rest.
 * function dispatch(pool: Pool, busy: number, waiting: RunRequest[]): RunRequest[] {
 *   const free = Math.max(0, pool.capacity - busy);
 *   if (free > 0) pool.run(waiting.slice(0, free));
 *   return waiting.slice(free);
 * }
 * ```
 */
export interface Pool {
  /** Total task slots (changes when the pool is resized). */
  readonly capacity: number;
  /** Web Workers taking tasks (threads pool); 1 for the inline pool (the main thread). */
  readonly concurrency: number;
  /** Web Workers of the resizable group holding no task (0 for the inline pool). */
  readonly idle: number;
  /**
   * Threads of terminated Web Workers that still run (see `thread_leaks.ts`);
   * null when they cannot be known (without `-A`, off Linux). None for the
   * inline pool.
   */
  readonly leakedThreads: LeakedThread[] | null;
  /**
   * Add (`delta > 0`) or retire (`delta < 0`) Web Workers; retired ones
   * finish their running tasks first. Throws when the pool cannot be resized.
   */
  resize(delta: number): void;
  /** Start the pool; resolves when it can run tasks. */
  start(): Promise<void>;
  /** Run requests (never more than there are free slots). */
  run(requests: RunRequest[]): void;
  /**
   * Whether the handler of task `seq`, handed to the pool and not ended, has
   * been called (a task may wait in its Web Worker behind others): its early
   * acknowledgement is written then. Absent, a task counts as started when
   * it is handed over.
   */
  started?(seq: number): boolean;
  /** Ask running tasks to stop (their AbortSignal fires). */
  abort(seqs: number[]): void;
  /**
   * Tasks handed to the pool were revoked (without terminate): each whose
   * handler has not been called yet is not run and is reported with a
   * `revoked` outcome; one already running runs on.
   */
  revoke(seqs: number[]): void;
  /**
   * Stop running tasks now (revoke with terminate): the Web Worker running
   * each is ended and replaced, and `onTimeLimit` reports it with the other
   * tasks it held that had not started (`onLost` those that had); one whose
   * handler already returned is left alone (its outcome settles it). The
   * inline pool can only fire their AbortSignals, and reports them at once.
   */
  terminate(seqs: number[]): void;
  /** Stop the pool; running tasks are abandoned. */
  close(): Promise<void>;
}
