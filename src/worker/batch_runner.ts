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
import { ExitCalled } from "./exit_called.ts";
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
 * `MESSAGE_BLOCKING_MS` while more tasks wait, until the next task starts
 * or nothing waits: a Web Worker idle between CPU-bound tasks sent one
 * message each then reports a few at a time (fewer wake-ups of the main
 * thread). Short tasks' outcomes go out at the end of their turn, as
 * without the count.
 *
 * No finished outcome stays in the thread while a task runs that may get
 * it terminated: a task starts only once the outcomes of the tasks that
 * finished before it are handed on, when it has a hard time limit, or when
 * those outcomes add up to `MESSAGE_BLOCKING_MS` of blocking work (any
 * running task may be revoked with terminate; a Celery prefork child sent
 * its result before its next task). Handlers run back to back in one turn
 * would otherwise hand theirs on only after the last; no-ops still go out
 * together (at most that much of their work is lost with a thread
 * terminated right after them). Nothing is held while a task with a hard
 * time limit runs, nor while a task waits to start. A start never waits for
 * a task whose follow-up code (hooks, task signal listeners, in-process
 * errbacks) is under way: that code may await a task that is to start here
 * (the thread would stall for good); such a task has not finished until it
 * is done, and its outcome is then handed on as any other.
 *
 * Given {@link CpuShares}, the `blocked` of a task whose
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
   * Tasks whose handler returned, until their outcome is in the outbox,
   * each with how long its handler blocked the thread: a task starts only
   * once they are handed on (`flushed`), when it has a hard limit or they
   * add up to `MESSAGE_BLOCKING_MS`, none lost with a terminated thread.
   */
  readonly #ending = new Map<number, number>();
  /**
   * Tasks taken out of `#ending` because their follow-up code (hooks, task
   * signal listeners, in-process errbacks) started, with their blocking time:
   * that code may await anything, even a task that is to run on this thread
   * after them, so no start waits for their outcome until it is complete.
   */
  readonly #following = new Map<number, number>();
  /** The blocking time of the tasks in `#ending`, and of those in the outbox. */
  #endingWork = 0;
  #outboxWork = 0;
  /** Tasks waiting to start, in the order they came: only the first may start. */
  readonly #queued = new Set<number>();
  /** Resolved at the next flush, or when the first of `#queued` starts: its tasks look again. */
  #moved: PromiseWithResolvers<void> | null = null;
  readonly #finishedHook = (seq: number, blocked: number) => {
    this.#ending.set(seq, blocked);
    this.#endingWork += blocked;
    this.#services.finished?.(seq, blocked);
  };
  readonly #followingHook = (seq: number) => {
    const work = this.#takeEnding(seq);
    if (work === undefined) return;
    this.#following.set(seq, work);
    // Tasks waiting to start look again: this one may be all they waited for.
    this.#move();
  };
  readonly #flushedHook = (seq: number, hard: boolean): Promise<void> | undefined => {
    const queued = this.#queued;
    // Behind the tasks already waiting to start: none overtakes another.
    if (queued.size && queued.values().next().value !== seq) return this.#wait(seq);
    if (hard || this.#endingWork + this.#outboxWork >= MESSAGE_BLOCKING_MS) {
      if (this.#outbox.length) this.#flush();
      if (this.#ending.size) return this.#wait(seq);
    }
    if (queued.delete(seq) && queued.size) this.#move();
    return undefined;
  };
  /** The thread is ending (`halt`): no task starts. */
  #halted = false;
  /** Tasks whose outcome is not handed on: the one that ended the thread, those kept from starting. */
  readonly #dropped = new Set<number>();
  readonly #startedHook = (seq: number): boolean => {
    if (!this.#halted) return this.#services.started?.(seq) ?? true;
    this.#dropped.add(seq);
    return false;
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
    if (this.#halted) return;
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
      started: this.#startedHook,
      finished: this.#finishedHook,
      following: this.#followingHook,
      flushed: this.#flushedHook,
    };
    for (const req of requests) {
      const ctl = new AbortController();
      this.#running.set(req.seq, ctl);
      runTask(tasks, req, ctl.signal, services).then(
        (o) => this.#finished(o),
        (err) => {
          // Its code ended the thread: it is lost with it.
          if (err instanceof ExitCalled) this.#dropped.add(req.seq);
          // Else thrown where no task code runs: the task fails with it, not an unhandled rejection.
          this.#finished(failedBeforeRun(req, err));
        },
      );
    }
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
   * The thread is about to end (task code called `Deno.exit()`: see
   * `exit_guard.ts`): start no task from now on (a task not started is
   * handed on by the main thread), and hand on no outcome of `seq`, whatever
   * it becomes (the task that ended the thread is lost with it). Outcomes of
   * tasks that finish before the thread ends are handed on as before.
   *
   * @example
   * ```ts ignore
   * runner.halt(runningSeq());
   * ```
   *
   * @param seq the task whose code ended the thread, if known
   */
  halt(seq?: number): void {
    this.#halted = true;
    if (seq !== undefined) this.#dropped.add(seq);
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
    const work = this.#takeEnding(outcome.seq);
    const followed = this.#following.get(outcome.seq);
    this.#following.delete(outcome.seq);
    if (this.#shares && !this.#awaited.delete(outcome.seq)) this.#starting--;
    if (!this.#dropped.delete(outcome.seq)) {
      this.#outboxWork += (work ?? 0) + (followed ?? 0);
      this.#outbox.push(outcome);
    }
    if (this.#flushScheduled) return;
    // Outcomes queued in this turn are already ahead of this microtask.
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#settle();
      const hold = this.#queued.size === 0 && this.#limited.size === 0 &&
        (this.#waiting?.() ?? 0) > 0 &&
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

  /** Take task `seq` out of `#ending`; its blocking time, if it was there. */
  #takeEnding(seq: number): number | undefined {
    const work = this.#ending.get(seq);
    if (work === undefined) return undefined;
    this.#ending.delete(seq);
    this.#endingWork = this.#ending.size ? this.#endingWork - work : 0;
    return work;
  }

  /** Queue task `seq` to start (where it is already, if it is) until something moves. */
  #wait(seq: number): Promise<void> {
    this.#queued.add(seq);
    return (this.#moved ??= Promise.withResolvers()).promise;
  }

  #move(): void {
    this.#moved?.resolve();
    this.#moved = null;
  }

  #flush(): void {
    if (this.#outbox.length === 0) return;
    this.#settle();
    const out = this.#outbox;
    this.#outbox = [];
    this.#outboxWork = 0;
    this.#settled = 0;
    this.#onOutcomes(out);
    this.#move();
  }
}
