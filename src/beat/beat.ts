/**
 * The beat scheduler: sends periodic tasks. Any number of beat processes
 * may run; the one holding the store's lease sends, and it records every
 * run with a compare-and-set fenced by its lease token before publishing,
 * so a run is sent once even when two beats both believe they lead.
 *
 * The loop itself (beat_loop.ts, and the schedule store's code with it) is
 * imported when a beat starts: an app's tasks module imports `Beat` with
 * the rest of `@celeriac/celeriac`, and so does each Web Worker of a
 * Celeriac worker, which never runs one.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import { anonymousNodeName } from "../client/runtime.ts";
import type { ScheduleStore } from "../broker/schedule_store.ts";
import { MAX_TIMER_MS } from "../broker/long_timeout.ts";
import type { BeatLoop } from "./beat_loop.ts";

/**
 * Options of {@link Beat}.
 *
 * @example A beat with a short lease, as tests use
 * ```ts
 * import { Beat, type BeatOptions, Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const options: BeatOptions = { app, leaseTime: 3, maxInterval: 1 };
 * const beat = new Beat(options);
 * await beat.start();
 * ```
 */
export interface BeatOptions {
  /** The app: its broker receives the tasks, its config holds the schedule. */
  app: Celery;
  /**
   * Seconds a leader's lease lasts without renewal; it is renewed every
   * third of that. A dead leader is replaced when its lease runs out, within
   * this time of its death.
   * Default 15.
   */
  leaseTime?: number;
  /**
   * Longest sleep between two looks at the schedule, in seconds: how soon
   * run-time changes reach the leader [`beat_max_loop_interval`]. Default 5.
   */
  maxInterval?: number;
  /** Key namespace in the store (several schedules on one server). Default the app's `beatNamespace`. */
  namespace?: string;
  /** This beat's name in logs and in the lease. Default `beat-<node>-<random>`. */
  hostname?: string;
  /** The store; default the app's (`beatStore`, else its broker). */
  store?: ScheduleStore;
  /** Stops the beat (as {@link Beat.stop}). */
  signal?: AbortSignal;
}

/**
 * The beat scheduler.
 *
 * @example
 * ```ts
 * import { Beat, Celery } from "@celeriac/celeriac";
 * // In a program, import app from the module that defines it and its beatSchedule.
 * const app = new Celery({
 *   broker: "redis://127.0.0.1:6379/0",
 *   beatSchedule: { tick: { task: "tasks.tick", schedule: "10s" } },
 * });
 * const beat = new Beat({ app });
 * await beat.start();
 * Deno.addSignalListener("SIGINT", () => beat.stop());
 * await beat.finished;
 * ```
 */
export class Beat {
  /** This beat's id in the lease and in logs. */
  readonly hostname: string;
  readonly #app: Celery;
  readonly #leaseMs: number;
  readonly #maxMs: number;
  readonly #namespace?: string;
  readonly #givenStore?: ScheduleStore;
  readonly #stopping = new AbortController();
  /** The loop, once {@link Beat.start} has imported its module. */
  #loop: BeatLoop | null = null;
  /** The start in progress or done, for {@link Beat.start} called again. */
  #starting: Promise<void> | null = null;

  /**
   * Create a beat. Nothing connects until {@link Beat.start}.
   *
   * @param options app, lease time, loop interval; see {@link BeatOptions}
   * @throws {RangeError} for a lease time or interval that is not positive
   */
  constructor(options: BeatOptions) {
    this.#app = options.app;
    const lease = options.leaseTime ?? 15;
    const max = options.maxInterval ?? 5;
    // A timer fires a delay above MAX_TIMER_MS after 1 ms: the loop would spin.
    if (!(lease > 0 && lease * 1000 <= MAX_TIMER_MS)) {
      throw new RangeError(
        `leaseTime must be a positive number of seconds, at most ${MAX_TIMER_MS / 1000} ` +
          `(24.8 days, what a timer holds), got ${lease}`,
      );
    }
    if (!(max > 0 && max * 1000 <= MAX_TIMER_MS)) {
      throw new RangeError(
        `maxInterval must be a positive number of seconds, at most ${MAX_TIMER_MS / 1000} ` +
          `(24.8 days, what a timer holds), got ${max}`,
      );
    }
    this.#leaseMs = lease * 1000;
    this.#maxMs = max * 1000;
    this.#namespace = options.namespace;
    this.#givenStore = options.store;
    this.hostname = options.hostname ??
      `beat-${anonymousNodeName()}-${crypto.randomUUID().slice(0, 8)}`;
    options.signal?.addEventListener("abort", () => this.stop(), { once: true });
  }

  /** Whether this beat holds the lease now (and may send). */
  get isLeader(): boolean {
    return this.#loop?.isLeader ?? false;
  }

  /** The fencing token of the lease this beat holds, or `null`. */
  get token(): number | null {
    return this.#loop?.token ?? null;
  }

  /** How many tasks this beat sent. */
  get sent(): number {
    return this.#loop?.sent ?? 0;
  }

  /** Settles when the beat has stopped and released its lease. */
  get finished(): Promise<void> {
    return this.#loop?.finished ?? Promise.resolve();
  }

  /**
   * Check the app's schedule, open the store and start the loop. Resolves
   * once running (leader or not). The app's broker opens in the background
   * (a standby beat too), so that a takeover sends a missed run at once.
   *
   * Idempotent: a call while the beat is starting or running returns the
   * first call's promise (one loop, one store connection). A start that
   * failed (the store unreachable) may be called again, as `worker.ts beat`
   * does while it waits for the store. A stopped beat does not start again:
   * its `start()` returns the first call's promise; make a new `Beat`.
   *
   * @example Starting twice runs one loop
   * ```ts
   * import { Beat, Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "kv://:memory:", beatSchedule: { tick: { task: "t.tick", schedule: "1h" } } });
   * const beat = new Beat({ app });
   * console.assert(beat.start() === beat.start());
   * await beat.start();
   * await beat.stop();
   * await app.close();
   * ```
   *
   * @throws {BeatEntryError} for an entry of the app's `beatSchedule` that
   *   could never be sent (a typo'd option, a bad schedule, args/kwargs its
   *   serializer cannot encode or its task's handler here cannot take),
   *   before connecting
   * @throws {BeatStoreError} when the app has no usable store
   * @throws {BrokerConnectionError} when the store cannot be reached
   */
  start(): Promise<void> {
    this.#starting ??= this.#start().catch((err) => {
      this.#starting = null; // a later call tries again
      throw err;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    const { BeatLoop } = await import("./beat_loop.ts");
    this.#loop ??= new BeatLoop({
      app: this.#app,
      hostname: this.hostname,
      leaseMs: this.#leaseMs,
      maxMs: this.#maxMs,
      namespace: this.#namespace,
      store: this.#givenStore,
      signal: this.#stopping.signal,
    });
    await this.#loop.start();
  }

  /**
   * Stop: finish the current step, release the lease. Resolves when stopped.
   * A publish or store call still unanswered 2 s after the stop (a stalled
   * broker or store) is given up, not waited for: that run, recorded before
   * its publish, is not sent (a warning says so), as Celery's beat leaves on
   * SIGTERM.
   */
  stop(): Promise<void> {
    this.#stopping.abort();
    return this.finished;
  }
}
