/**
 * The `inline` pool: tasks run on the main thread.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Celery } from "../client/app.ts";
import { currentTask } from "../client/current.ts";
import { SENT_FROM_TASK, type SentFromTask } from "../client/publisher.ts";
import { SoftTimeLimitExceeded, TimeLimitExceeded } from "../client/worker_errors.ts";
import { BatchRunner } from "./batch_runner.ts";
import type { RunRequest } from "./executor.ts";
import type { Pool, PoolEvents } from "./pool.ts";
import { catchStrayErrors } from "./stray_errors.ts";
import type { LeakedThread } from "./leaked_threads.ts";
import { logSoftTimeLimit, type TimeLimits, TimeLimitTimers } from "./time_limits.ts";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * Runs tasks on the main thread, many at a time: for I/O-bound async
 * tasks, and where Web Workers are not wanted. The main thread cannot be
 * terminated, so at a hard time limit the task's AbortSignal fires and the
 * task is reported failed, but its code may go on in the background.
 * While it runs, every unhandled rejection and throw from a timer on the
 * main thread (task code's or the worker's own: they cannot be told apart)
 * is logged and the worker goes on (`stray_errors.ts`): Deno would
 * otherwise end the process, losing every task running then.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { InlinePool, type PoolEvents } from "@celeriac/celeriac/worker";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const events: PoolEvents = {
 *   onOutcomes: (outcomes) => console.log(outcomes.length, "finished"),
 *   onPublish: async () => {}, // a task sent a task: publish it
 *   onLost: (seqs, reason) => console.error(seqs, reason),
 *   onTimeLimit: (seq, seconds) => console.error(seq, "ran past", seconds, "s"),
 * };
 * const pool = new InlinePool(app, 100, events);
 * ```
 */
export class InlinePool implements Pool {
  readonly capacity: number;
  readonly #app: Celery;
  readonly #runner: BatchRunner;
  readonly #limits: TimeLimitTimers;
  readonly #events: PoolEvents;
  readonly #running = new Map<
    number,
    { task: string; id: string; limits?: TimeLimits; started?: boolean }
  >();
  /** Tasks revoked while they wait for their handler to be called (`revoke`). */
  readonly #revoked = new Set<number>();
  /** Installed on the app while the pool runs: what a running task sends goes to its children. */
  readonly #sent: SentFromTask;
  /** Stops catching the errors task code leaves behind, set while the pool runs. */
  #release: (() => void) | null = null;

  /**
   * Configure the inline pool.
   *
   * @param app the app whose tasks run
   * @param slots how many tasks may run at once
   * @param events where outcomes go
   * @param maxDecompressedSize the most bytes a compressed body may decompress to
   */
  constructor(app: Celery, slots: number, events: PoolEvents, maxDecompressedSize?: number) {
    if (!(slots >= 1)) throw new RangeError("The inline pool needs at least 1 slot");
    this.#app = app;
    this.capacity = slots;
    this.#events = events;
    // Only what a task's own code sends (it runs in the task's async context): the worker's
    // follow-ups, sent through the same app after the task finished, are not its children here.
    this.#sent = (message, child) => {
      if (currentTask.getStore()) events.onSent?.(message, child);
    };
    this.#runner = new BatchRunner((outcomes) => {
      for (const o of outcomes) {
        this.#running.delete(o.seq);
        this.#limits.clear(o.seq);
        if (this.#revoked.size) this.#revoked.delete(o.seq);
      }
      events.onOutcomes(outcomes);
    }, {
      storeState: events.onState?.bind(events),
      maxDecompressedSize,
      revoked: (seq) => this.#revoked.has(seq),
      // A task's limits start when its handler is called, not while others hold the thread.
      started: (seq) => {
        const r = this.#running.get(seq);
        if (!r) return true;
        r.started = true;
        if (r.limits) this.#limits.start(seq, r.limits);
        return true;
      },
    });
    this.#limits = new TimeLimitTimers({
      soft: (seq, seconds) => {
        const r = this.#running.get(seq);
        if (!r) return;
        logSoftTimeLimit(seconds, r);
        this.#runner.abort([seq], new SoftTimeLimitExceeded({ seconds, ...r }));
      },
      hard: (seq, seconds) => {
        const r = this.#running.get(seq);
        if (!r) return;
        this.#running.delete(seq);
        this.#runner.abort([seq], new TimeLimitExceeded({ seconds, ...r }));
        log.error(
          "Hard time limit ({seconds}s) exceeded for {task}[{id}] (inline pool: its " +
            "code may still be running)",
          { seconds, ...r },
        );
        events.onTimeLimit(seq, seconds, []);
      },
    });
  }

  /** The inline pool runs on one thread: the main one. */
  readonly concurrency = 1;

  /** No Web Workers, so none idle. */
  readonly idle = 0;
  /** No Web Workers, so no thread of one leaked. */
  readonly leakedThreads: LeakedThread[] = [];

  /**
   * Not possible: the inline pool has no Web Workers.
   *
   * @throws {RangeError} always
   */
  resize(_delta: number): void {
    throw new RangeError(
      "The inline pool runs tasks on the main thread and cannot grow or shrink: its task slots " +
        "are set by --prefetch; run the worker with --pool threads to resize its Web Workers",
    );
  }

  start(): Promise<void> {
    this.#app[SENT_FROM_TASK] = this.#sent;
    this.#release ??= catchStrayErrors();
    return Promise.resolve();
  }

  run(requests: RunRequest[]): void {
    for (const req of requests) {
      this.#running.set(req.seq, { task: req.task, id: req.id, limits: req.timeLimits });
    }
    this.#runner.run(this.#app.tasks, requests, this.#app.signals);
  }

  started(seq: number): boolean {
    return this.#running.get(seq)?.started ?? false;
  }

  abort(seqs: number[]): void {
    this.#runner.abort(seqs);
  }

  revoke(seqs: number[]): void {
    for (const seq of seqs) if (this.#running.has(seq)) this.#revoked.add(seq);
  }

  /**
   * Fire the AbortSignals of the running tasks `seqs` and report them
   * terminated at once (their code may go on), as the threads pool reports
   * a Web Worker it terminates: the outcome they give after is not settled
   * again, and one a task gave before is its run's, left alone.
   */
  terminate(seqs: number[]): void {
    for (const seq of seqs) {
      if (!this.#running.delete(seq)) continue;
      this.#limits.clear(seq);
      this.#runner.abort([seq]);
      this.#events.onTimeLimit(seq, 0, []);
    }
  }

  close(): Promise<void> {
    this.#limits.clearAll();
    this.#release?.();
    this.#release = null;
    if (this.#app[SENT_FROM_TASK] === this.#sent) this.#app[SENT_FROM_TASK] = undefined;
    return Promise.resolve();
  }
}
