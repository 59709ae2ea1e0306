/**
 * The worker: the main thread takes deliveries, holds ETA tasks, hands
 * tasks to a pool, stores results, publishes follow-ups and settles every
 * delivery exactly once.
 *
 * Layout of `src/worker/` around a task's life (received → [held for ETA |
 * waiting for a rate token] → started → succeeded | failed | retried |
 * revoked | rejected | returned):
 *
 * - `worker.ts` — {@link Worker}: start, warm and cold shutdown; wires the
 *   parts below together (`ready_log.ts`: the lines logged once ready;
 *   `start_steps.ts`: declaring the queues, reading the revoked ids;
 *   `shutdown_steps.ts`: a cold shutdown's hand-back of the running tasks,
 *   the shutdown steps not waited for through an outage;
 *   `control_target.ts`: what remote control acts on).
 * - `consumer.ts` — the queues consumed and the take loop: how many to take
 *   (the pool's slots, `prefetch_window.ts`), back-off, hand to the intake.
 * - `worker_options.ts` — {@link WorkerOptions}; `options_check.ts` — the
 *   checks they pass when a worker is constructed.
 * - `worker_state.ts` — what the parts share: connections, pool, running
 *   tasks, revoked ids, settlements in flight, the lifecycle.
 * - `lifecycle.ts` — the typed {@link LifecycleEvent}s and the one
 *   {@link Lifecycle} that emits them. Subscribers:
 *   `worker_stats.ts` (counters), `lifecycle_log.ts` (log lines),
 *   `task_registries.ts` (active / reserved / scheduled, for inspect),
 *   `task_events.ts` (Celery's `task-*` events, sent by
 *   `event_dispatcher.ts`; `heartbeat.ts` sends the `worker-*` events).
 * - `intake.ts` — decode, refuse, hold for ETA, wait for a rate token
 *   (`rate_limit.ts`, the tasks' limits in `task_rates.ts`; `timer_queue.ts`,
 *   `scale_limits.ts`), screen redeliveries (`screening.ts`), hand to the
 *   pool: emits received, held, waiting, started, and revoked / rejected at
 *   arrival.
 * - `outcomes.ts` — what the pool reports (outcomes, dead Web Workers, time
 *   limits): emits succeeded, failed, retried, revoked (terminated),
 *   rejected (refused), returned; `retries.ts` publishes retries.
 * - `settlement.ts` — park, store, publish, then acknowledge a batch;
 *   `result_entries.ts` — the results the worker writes itself;
 *   `follow_ups.ts`, `chords.ts`, `children.ts` — callbacks, chain steps,
 *   chords; `last_resort.ts` — errors while receiving or settling park
 *   rather than crash.
 * - `pool_setup.ts`, `pool.ts`, `runner.ts`, `executor.ts` — the Web Worker
 *   (or inline) pool and the code running a task (`pool_hooks.ts`: what the
 *   worker does with what the pool reports; `thread_pool.ts`, each
 *   Web Worker started in `member_spawn.ts`); `recycling.ts` (per Web
 *   Worker, inside the pool), `time_limits.ts`, `thread_leaks.ts` (threads
 *   a terminate did not stop), `sandboxes.ts`;
 *   `autoscaler.ts` grows and shrinks it (`--autoscale`, rules in
 *   `autoscale_policy.ts`).
 * - `leases.ts` — renews the leases of the deliveries the worker holds.
 * - `revoke.ts` — revoke ids, drop held tasks, terminate running ones.
 * - `remote_control.ts` — the pidbox: commands and replies;
 *   `inspect_commands.ts`, `inspection.ts`, `inspect_replies.ts` — the
 *   inspect commands and Celery's reply shapes.
 * - `builtins.ts` — Celery's built-in tasks (`celery.map`, ...).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Celery } from "../client/app.ts";
import { nodeName } from "./node_name.ts";
import { registerBuiltins } from "./builtins.ts";
import { Intake } from "./intake.ts";
import { Consumer } from "./consumer.ts";
import { renewLeases } from "./leases.ts";
import { logLifecycle } from "./lifecycle_log.ts";
import { EventDispatcher } from "./event_dispatcher.ts";
import { Heartbeat, HEARTBEAT_INTERVAL } from "./heartbeat.ts";
import { HeapCap } from "./heap_cap.ts";
import { declareQueues, readRevokedLater, subscribeControlLater } from "./start_steps.ts";
import { logReady } from "./ready_log.ts";
import { createPool } from "./pool_setup.ts";
import { poolHooks } from "./pool_hooks.ts";
import { checkWorkerOptions } from "./options_check.ts";
import { controlTarget } from "./control_target.ts";
import { RemoteControl } from "./remote_control.ts";
import { revokeTasks, type RevokeTasksOptions } from "./revoke.ts";
import { returnRunning, settleUnlessOutage, unlessOutage } from "./shutdown_steps.ts";
import { sendTaskEvents } from "./task_events.ts";
import { TaskRates } from "./task_rates.ts";
import { TaskRegistries } from "./task_registries.ts";
import {
  DEFAULT_LEAKED_THREADS_RESTART,
  type LeakedThread,
  LeakedThreadsError,
  logThreadLeak,
} from "./leaked_threads.ts";
import type { WorkerOptions } from "./worker_options.ts";
import { countStats, type WorkerStats, zeroStats } from "./worker_stats.ts";
import { WorkerState } from "./worker_state.ts";

export { REVOKE_TTL_MS } from "./revoked_ids.ts";
export type { WorkerOptions } from "./worker_options.ts";
export type { WorkerStats } from "./worker_stats.ts";

const log = getLogger(["celeriac", "worker"]);

/**
 * A Celeriac worker.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { Worker } from "@celeriac/celeriac/worker";
 * // In a program, import app from tasks.ts, the module appModule names for the threads.
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const worker = new Worker({ app, appModule: new URL("./tasks.ts", import.meta.url).href });
 * await worker.start();
 * Deno.addSignalListener("SIGTERM", () => worker.stop());
 * await worker.finished;
 * await app.close(); // the app's connections stay open until closed: the program exits
 * ```
 */
export class Worker {
  /** The node name, e.g. `celeriac@myhost`. */
  readonly hostname: string;
  /** Counters. */
  readonly stats: WorkerStats = zeroStats();
  readonly #app: Celery;
  readonly #s: WorkerState;
  readonly #intake: Intake;
  readonly #consumer: Consumer;
  readonly #registries: TaskRegistries;
  readonly #rates: TaskRates;
  readonly #control = new AbortController();
  /** Aborted by the first shutdown asked for during start-up: ends the step under way. */
  readonly #startUp = new AbortController();
  #leaseTimer: ReturnType<typeof setInterval> | undefined;
  #heartbeat: Heartbeat | null = null;
  #stopping = false;
  #cold = false;
  /** While {@link Worker.start} runs: settles (never rejects) when it returned. */
  #starting: Promise<void> | null = null;
  /** The start-up check for another node of the same name (see {@link subscribeControlLater}). */
  #nameCheck: Promise<void> = Promise.resolve();
  readonly #finished = Promise.withResolvers<void>();
  #failure: Error | null = null;

  /**
   * Configure a worker; nothing runs until {@link Worker.start}.
   *
   * @param options see {@link WorkerOptions}
   */
  constructor(options: WorkerOptions) {
    this.#app = options.app;
    this.hostname = nodeName(options.hostname);
    checkWorkerOptions(options);
    registerBuiltins(this.#app);
    this.#s = new WorkerState(options.app, options, this.hostname);
    this.#registries = new TaskRegistries(this.#s.running);
    this.#s.lifecycle.subscribe(countStats(this.stats));
    this.#s.lifecycle.subscribe(this.#registries.subscriber);
    this.#intake = new Intake(this.#s);
    this.#consumer = new Consumer(
      this.#s,
      this.#intake,
      options.queues?.length ? options.queues : [options.app.config.defaultQueue],
      (err) => this.#stopFor(err),
    );
    this.#rates = new TaskRates(this.#app, this.#intake.limiter);
  }

  /**
   * Change a task's rate limit at run time (Celery's `rate_limit` remote
   * control command). Tasks already waiting for a token are released at
   * once when the limit is removed.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * import { Worker } from "@celeriac/celeriac/worker";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const worker = new Worker({ app, pool: "inline" });
   * worker.setRateLimit("tasks.scrape", "5/s");
   * worker.setRateLimit("tasks.scrape", null); // no limit
   * ```
   *
   * @param name a task this worker runs
   * @param rate `"10/s"`, `"100/m"`, `"1000/h"`, a number per second; `null` or 0 for none
   * @throws {TypeError} for an unknown task or a malformed rate
   */
  setRateLimit(name: string, rate: string | number | null): void {
    this.#rates.set(name, rate);
  }

  /**
   * A task's rate limit in runs per second, or `null` without one.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * import { Worker } from "@celeriac/celeriac/worker";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const worker = new Worker({ app, pool: "inline" });
   * worker.rateLimit("tasks.scrape"); // 10 for "10/s"
   * ```
   *
   * @param name task name
   * @returns the rate
   */
  rateLimit(name: string): number | null {
    return this.#rates.rate(name);
  }

  /** The queues consumed (changed at run time by `add_consumer` / `cancel_consumer`). */
  get queues(): readonly string[] {
    return this.#consumer.queues;
  }

  /**
   * Resolves when the worker has stopped and settled everything. The app's connections stay
   * open (other code, another worker, may still use the app): `await app.close()` when done.
   */
  get finished(): Promise<void> {
    return this.#finished.promise;
  }

  /**
   * Why the worker stopped by itself, or `null`: set when the broker failed
   * in a way trying again cannot mend (a `BrokerConnectionError` that is not
   * `transient`, such as its KV file deleted while it ran), or to a
   * {@link LeakedThreadsError} when threads of terminated Web Workers still
   * run (`leakedThreadsRestart`); the worker then makes a warm shutdown. The
   * command line exits with status 1, or starts over after leaked threads.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * import { Worker } from "@celeriac/celeriac/worker";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const worker = new Worker({ app, pool: "inline" });
   * await worker.finished;
   * if (worker.failure) Deno.exitCode = 1;
   * ```
   */
  get failure(): Error | null {
    return this.#failure;
  }

  /** How many tasks are running now. */
  get active(): number {
    return this.#s.running.size;
  }

  /**
   * Connect, start the pool and begin consuming.
   *
   * A {@link Worker.stop} or {@link Worker.terminate} called meanwhile (a
   * signal during start-up) ends start-up: a connect under way is aborted
   * (what it opened is closed; start() resolves without an error), a
   * declaration or subscription under way is no longer waited for, and
   * the Web Workers being started finish starting; then the shutdown
   * closes what was opened. The remote-control subscription, when its
   * set-up completes later, subscribes and consumes nothing (Redis: its
   * binding is removed); a queue declaration completes, and the queue is
   * kept, as Celery keeps declared queues. Nothing is taken and
   * `workerReady` is not emitted. Called after a shutdown began, it
   * starts nothing.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * import { Worker } from "@celeriac/celeriac/worker";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const worker = new Worker({ app, pool: "inline" });
   * await worker.start();
   * ```
   */
  async start(): Promise<void> {
    if (this.#stopping) return;
    const starting = this.#start();
    this.#starting = starting.then(() => {}, () => {});
    try {
      await starting;
    } catch (err) {
      const reason = this.#startUp.signal.reason;
      if (!this.#startUp.signal.aborted || err !== reason) throw err;
    } finally {
      this.#starting = null;
    }
    if (this.#stopping) return;
    await this.#app.signals.emit("workerReady", { hostname: this.hostname, queues: this.queues });
  }

  /** Start-up's steps; each returns early once a shutdown began (see {@link Worker.start}). */
  async #start(): Promise<void> {
    const s = this.#s;
    s.lifecycle.subscribe(logLifecycle(() => [...this.#app.tasks.keys()]));
    const signal = this.#startUp.signal;
    s.broker = await this.#app.broker({ signal });
    s.backend = this.#app.config.backend === null
      ? null
      : await this.#app.resultBackend({ signal });
    if (this.#stopping) return;
    await declareQueues(s, s.broker, this.queues, signal);
    // Waited for START_STEP_WAIT_MS at most (as the remote control's subscription below): on a
    // Redis Cluster whose {celeriac} master is down, the queues whose masters are up are consumed.
    const later = {
      hostname: this.hostname,
      limit: s.outageRetryLimit,
      signal,
      stop: this.#control.signal,
    };
    await readRevokedLater(s, s.broker, this.#intake, later);
    if (this.#stopping) return;
    s.events = new EventDispatcher(s.broker, this.hostname, s.clock, {
      taskEvents: s.options.taskEvents ?? this.#app.config.workerSendTaskEvents,
    });
    s.lifecycle.subscribe(sendTaskEvents(s.events));
    const heap = new HeapCap();
    const { pool, sandboxes } = createPool(
      this.#app,
      s.options,
      poolHooks(
        s,
        this.#app,
        this.#consumer,
        heap,
        (leak, count) => this.#threadLeaked(leak, count),
      ),
    );
    s.pool = pool;
    heap.collect(); // start-up's garbage, before the Web Workers add theirs: ~1.5 MiB lower peak
    await pool.start();
    if (this.#stopping) return;
    s.autoscaler?.start(s.lifecycle, this.#control.signal);
    if (s.options.remoteControl ?? true) {
      // Ended by the shutdown's abort of #control, which undoes the subscription.
      const target = controlTarget({
        app: this.#app,
        s,
        registries: this.#registries,
        rates: this.#rates,
        consumer: this.#consumer,
        revoke: (ids, terminate, stored, signum) => this.revoke(ids, { terminate, stored, signum }),
        setRateLimit: (name, rate) => this.setRateLimit(name, rate),
        stop: () => void this.stop(),
        heartbeat: () => this.#heartbeat?.requested(),
      });
      const pidbox = new RemoteControl(s.broker, target, s.clock);
      await subscribeControlLater(pidbox, later, (check) => this.#nameCheck = check);
      if (this.#stopping) return;
    }
    this.#heartbeat = new Heartbeat(s.events, () => ({
      active: s.running.size,
      processed: this.#registries.processed,
    }), s.options.heartbeatInterval ?? HEARTBEAT_INTERVAL);
    this.#heartbeat.start();
    this.#leaseTimer = renewLeases(
      s,
      () => this.#intake.holding(),
      (gone) => this.#intake.dropLost(gone),
    );
    logReady({
      hostname: this.hostname,
      inline: s.options.pool === "inline",
      concurrency: pool.concurrency,
      capacity: pool.capacity,
      queues: this.queues,
      tasks: this.#app.tasks.keys(),
      sandboxes,
    });
    this.#consumer.start();
  }

  /** Make a warm shutdown for `err`, kept as {@link Worker.failure}. */
  #stopFor(err: Error): void {
    this.#failure = err;
    this.stop().catch((e) =>
      log.error("{hostname}: stopping ({why}) failed: {error}", {
        hostname: this.hostname,
        why: err.message,
        error: (e as Error).message,
      })
    );
  }

  /** A thread of a terminated Web Worker still runs: report it; restart at the option's count. */
  #threadLeaked(leak: LeakedThread, count: number): void {
    const at = this.#s.options.leakedThreadsRestart ?? DEFAULT_LEAKED_THREADS_RESTART;
    const restart = !this.#stopping && at > 0 && count >= at;
    logThreadLeak(leak, count, at, restart ? "restart" : this.#stopping ? "stopping" : "report");
    if (restart) this.#stopFor(new LeakedThreadsError(this.#s.pool.leakedThreads ?? [leak]));
  }

  /**
   * Revoke tasks: they are skipped when they arrive (or, if held for an
   * ETA, at once, or, if handed to the pool and not started, when their turn
   * comes); with `terminate`, running ones are stopped and stored as
   * REVOKED "terminated". Remote `revoke` commands call this.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * import { Worker } from "@celeriac/celeriac/worker";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const worker = new Worker({ app, pool: "inline" });
   * const taskId = "5c0e4e3a-…";
   * worker.revoke([taskId], { terminate: true });
   * ```
   *
   * @param ids task ids
   * @param options `terminate`: also stop running ones (default false);
   *   `stored`: the ids are in the broker's revoked list already (a
   *   Celeriac client stored them before its broadcast), so they are not
   *   stored again (default false: stored, so workers starting later skip them)
   * @returns the ids that were running and are being terminated
   */
  revoke(ids: readonly string[], options: RevokeTasksOptions = {}): string[] {
    return revokeTasks(this.#s, this.#intake, ids, options);
  }

  /**
   * Warm shutdown: stop taking messages, let running tasks finish, store
   * and settle everything, put held ETA tasks back in their queues.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * import { Worker } from "@celeriac/celeriac/worker";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const worker = new Worker({ app, pool: "inline" });
   * Deno.addSignalListener("SIGTERM", () => worker.stop());
   * ```
   */
  async stop(): Promise<void> {
    if (this.#stopping) return await this.#finished.promise;
    this.#stopping = true;
    await this.#startUpEnded();
    const s = this.#s;
    log.info("{hostname}: warm shutdown, waiting for {n} running task(s)", {
      hostname: this.hostname,
      n: s.running.size,
    });
    this.#consumer.stop();
    this.#control.abort();
    s.wake();
    await this.#nameCheck;
    await this.#consumer.done;
    await unlessOutage(s, () => this.#intake.requeueAll(), "requeue prefetched messages");
    while (s.running.size > 0 && !this.#cold) await s.sleep();
    // A cold shutdown that started meanwhile finishes the job (and resolves `finished`).
    if (this.#cold) return await this.#finished.promise;
    await settleUnlessOutage(s);
    clearInterval(this.#leaseTimer);
    s.startAcks.close();
    await s.pool?.close(); // undefined when start-up ended before the pool
    await this.#offline();
    await this.#app.signals.emit("workerShutdown", { hostname: this.hostname });
    this.#finished.resolve();
  }

  /**
   * Cold shutdown: put tasks that are still running back in their queues
   * (unacknowledged ones are requeued, acknowledged ones republished), then
   * stop without waiting for them.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * import { Worker } from "@celeriac/celeriac/worker";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const worker = new Worker({ app, pool: "inline" });
   * Deno.addSignalListener("SIGINT", () => worker.stop().then(() => {}, () => {}));
   * ```
   */
  async terminate(): Promise<void> {
    if (this.#cold) return await this.#finished.promise;
    this.#cold = true;
    this.#stopping = true;
    await this.#startUpEnded();
    const s = this.#s;
    this.#intake.close();
    this.#consumer.stop();
    this.#control.abort();
    const running = await returnRunning(s, this.#consumer.done);
    await s.pool?.close();
    await this.#nameCheck;
    await unlessOutage(s, () => this.#intake.requeueAll(running), "requeue running tasks");
    await settleUnlessOutage(s);
    clearInterval(this.#leaseTimer);
    s.startAcks.close();
    await this.#offline();
    await this.#app.signals.emit("workerShutdown", { hostname: this.hostname });
    this.#finished.resolve();
  }

  /** A shutdown asked for during {@link Worker.start}: end the step under way, wait for start-up. */
  async #startUpEnded(): Promise<void> {
    if (!this.#starting) return;
    if (!this.#startUp.signal.aborted) {
      log.info("{hostname}: shutdown asked for while starting; ending the current step", {
        hostname: this.hostname,
      });
      this.#startUp.abort(new DOMException("The worker was stopped while starting", "AbortError"));
    }
    await this.#starting;
  }

  /** Send `worker-offline` and every pending event. */
  async #offline(): Promise<void> {
    this.#heartbeat?.stop();
    this.#heartbeat = null;
    await this.#s.events?.close();
  }
}
