/**
 * Runs many task requests at once inside a Web Worker (or the inline pool)
 * and hands their outcomes back in batches; one run is in executor.ts.
 *
 * @module
 */

import type { Task } from "../client/task.ts";
import type { Signals } from "../client/signals.ts";
import { MESSAGE_BLOCKING_MS } from "./blocking_time.ts";
import type { CpuShares } from "./cpu_share.ts";
import {
  failedBeforeRun,
  type RunOutcome,
  type RunRequest,
  type RunServices,
  runTask,
} from "./executor.ts";
import { SeqMap } from "./seq_map.ts";

/**
 * Runs task requests against a registry, many at a time, and reports their
 * outcomes in batches: outcomes of tasks that finish in the same turn (every
 * synchronous handler of a batch) go out together. Given `waiting` (tasks
 * already sent to this runner that it has not received), it holds
 * outcomes of tasks that blocked their thread for at least
 * `MESSAGE_BLOCKING_MS` while more tasks wait, and posts them at the start
 * of the turn that runs the first tasks they are not fewer than, or once
 * nothing waits: a Web Worker running CPU-bound tasks one message each then
 * reports a few at a time (fewer wake-ups of the main thread) while it
 * still has tasks to run until the main thread sends more. Short tasks'
 * outcomes go out at the end of their turn, as without the count. Nothing is held while a task with
 * a hard time limit runs (a Web Worker stopped at that limit would lose
 * what it holds), and such a task starts only once the outcomes of the
 * tasks that finished before it are handed on: handlers run back to back in
 * one turn would otherwise hand theirs on only after it. Given {@link CpuShares}, the `blocked` of a task whose
 * handler awaited also counts its share of the thread's CPU time after its
 * first await (see `cpu_share.ts`), before anything is decided from it; the
 * turn that starts tasks, with the work for those that do not await, is
 * no one's share.
 * Used inside Web Workers and by the inline pool.
 *
 * @example
 * ```ts ignore
 * const runner = new BatchRunner((outcomes) => self.postMessage({ type: "outcomes", outcomes }));
 * runner.run(app.tasks, requests);
 * ```
 */
export class BatchRunner {
  readonly #onOutcomes: (outcomes: RunOutcome[]) => void;
  readonly #services: RunServices;
  readonly #waiting: (() => number) | undefined;
  readonly #shares: CpuShares | undefined;
  readonly #firstRun: ((seq: number, awaits: boolean) => void) | undefined;
  /**
   * Tasks started (with shares) that have not awaited yet, nor finished
   * without awaiting: the start is under way until none is left and the
   * outcomes of those that finished are handed on (or held).
   */
  #starting = 0;
  /** Tasks running whose handler awaited (with shares). */
  readonly #awaited = new Set<number>();
  /** How many outcomes at the head of the outbox have their CPU share added. */
  #settled = 0;
  readonly #running = new SeqMap<AbortController>();
  /** Running requests with a hard time limit. */
  readonly #limited = new Set<number>();
  /**
   * Tasks whose handler returned while a task with a hard limit is held
   * here, until their outcome is in the outbox: one such task starts only
   * once they are handed on (`flushed`), none lost with a terminated thread.
   */
  readonly #ending = new Set<number>();
  /** Resolved at the next flush, for tasks with a hard limit waiting to start. */
  #handedOn: PromiseWithResolvers<void> | null = null;
  readonly #finishedHook = (seq: number) => {
    if (this.#limited.size) this.#ending.add(seq);
    this.#services.finished?.(seq);
  };
  readonly #flushedHook = (): Promise<void> | undefined => {
    if (this.#outbox.length) this.#flush();
    if (this.#ending.size === 0) return undefined;
    return (this.#handedOn ??= Promise.withResolvers()).promise;
  };
  #outbox: RunOutcome[] = [];
  #flushScheduled = false;

  /**
   * @param onOutcomes receives each batch of finished outcomes
   * @param services what tasks may reach (state updates)
   * @param waiting tasks sent to this runner and not received yet; default: outcomes are never held
   * @param shares the thread's CPU time shared among its tasks; default: `blocked` is the first run
   */
  constructor(
    onOutcomes: (outcomes: RunOutcome[]) => void,
    services: RunServices = {},
    waiting?: () => number,
    shares?: CpuShares,
  ) {
    this.#onOutcomes = onOutcomes;
    this.#services = services;
    this.#waiting = waiting;
    this.#shares = shares;
    this.#firstRun = shares && ((seq, awaits) => {
      if (!awaits) return;
      this.#awaited.add(seq);
      shares.awaiting(seq);
      // With outcomes of this start still to hand on, their turn's flush ends it.
      if (--this.#starting === 0 && !this.#flushScheduled) shares.end();
    });
  }

  /**
   * Start requests; each gets its own AbortSignal.
   *
   * @param tasks the registry
   * @param requests what to run
   * @param signals the app's signals, for task signal listeners
   */
  run(
    tasks: ReadonlyMap<string, Task<never, unknown>>,
    requests: RunRequest[],
    signals?: Signals,
  ): void {
    if (this.#shares && requests.length) {
      this.#shares.start();
      this.#starting += requests.length;
    }
    const limited = requests.filter((r) => r.timeLimits?.hard);
    const caughtUp = this.#waiting && this.#outbox.length >= requests.length + this.#waiting();
    if (limited.length || caughtUp) this.#flush();
    for (const r of limited) this.#limited.add(r.seq);
    const services: RunServices = {
      ...this.#services,
      signals,
      firstRun: this.#firstRun,
      finished: this.#finishedHook,
      flushed: this.#flushedHook,
    };
    for (const req of requests) {
      const ctl = new AbortController();
      this.#running.set(req.seq, ctl);
      runTask(tasks, req, ctl.signal, services).then(
        (o) => this.#finished(o),
        // Thrown where no task code runs: the task fails with it, not an unhandled rejection.
        (err) => this.#finished(failedBeforeRun(req, err)),
      );
    }
  }

  /**
   * Whether a request is still running here (received and not finished).
   *
   * @param seq its dispatch number
   * @returns true until its outcome is handed on
   */
  running(seq: number): boolean {
    return this.#running.has(seq);
  }

  /**
   * Fire the AbortSignals of running requests.
   *
   * @param seqs their dispatch numbers
   * @param reason the signals' reason (default an `AbortError`)
   */
  abort(seqs: number[], reason?: unknown): void {
    for (const s of seqs) this.#running.get(s)?.abort(reason);
  }

  /**
   * Hand on the outcomes held now (the thread is about to end: see
   * `exit_guard.ts`).
   *
   * @example
   * ```ts ignore
   * runner.flush();
   * ```
   */
  flush(): void {
    this.#flush();
  }

  #finished(outcome: RunOutcome): void {
    this.#running.delete(outcome.seq);
    this.#limited.delete(outcome.seq);
    this.#ending.delete(outcome.seq);
    this.#outbox.push(outcome);
    if (this.#shares && !this.#awaited.delete(outcome.seq)) this.#starting--;
    if (this.#flushScheduled) return;
    // Outcomes queued in this turn are already ahead of this microtask.
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#settle();
      const hold = this.#limited.size === 0 && (this.#waiting?.() ?? 0) > 0 &&
        this.#outbox.every((o) => (o.blocked ?? 0) >= MESSAGE_BLOCKING_MS);
      if (!hold) this.#flush();
      if (this.#starting === 0) this.#shares?.end();
    });
  }

  /** Add their CPU share to the outcomes that came in since the last time. */
  #settle(): void {
    if (!this.#shares || this.#settled === this.#outbox.length) return;
    this.#shares.settle(this.#outbox.slice(this.#settled));
    this.#settled = this.#outbox.length;
  }

  #flush(): void {
    if (this.#outbox.length === 0) return;
    this.#settle();
    const out = this.#outbox;
    this.#outbox = [];
    this.#settled = 0;
    this.#onOutcomes(out);
    this.#handedOn?.resolve();
    this.#handedOn = null;
  }
}
