/**
 * The state the parts of a worker share: its connections and pool, the
 * lifecycle it announces task steps on, the tasks handed to the pool, the
 * revoked ids, and the settlements in flight.
 *
 * @module
 */

import { ChildrenTracker } from "./children.ts";
import { getLogger } from "@logtape/logtape";
import type { ResultBackend } from "../backend/port.ts";
import type { Broker, Delivery, Publication, PublishTarget, Rejection } from "../broker/port.ts";
import { OutageWatch } from "../broker/outage.ts";
import { PUBLISHER } from "../client/publisher.ts";
import type { Celery } from "../client/app.ts";
import type { Task } from "../client/task.ts";
import type { Message } from "../protocol/message.ts";
import type { TaskRequest } from "../protocol/task_request.ts";
import { LamportClock } from "../protocol/clock.ts";
import { Autoscaler } from "./autoscaler.ts";
import type { EventDispatcher } from "./event_dispatcher.ts";
import { Lifecycle, taskOf } from "./lifecycle.ts";
import type { Pool } from "./pool.ts";
import { RevokedIds } from "./revoked_ids.ts";
import { SeqMap } from "./seq_map.ts";
import { StartAcks } from "./start_acks.ts";
import { announceParks, settle, Settlement } from "./settlement.ts";
import type { WorkerOptions } from "./worker_options.ts";

const log = getLogger(["celeriac", "worker"]);

/**
 * Milliseconds after which a settlement under way counts as slow: its
 * deliveries then keep their slots in the take budget. Results and
 * acknowledgements take a few ms to write; a backend that is down or stalls
 * keeps them for much longer.
 */
const SLOW_SETTLEMENT_MS = 50;

/** A task handed to the pool. */
export interface Running {
  /** Its delivery. */
  delivery: Delivery;
  /** Its headers. */
  req: TaskRequest;
  /**
   * Whether the delivery is acknowledged (early ack: once the task started,
   * or ended).
   */
  acked: boolean;
  /**
   * Early ack: acknowledged as it starts in the pool ({@link StartAcks}), or
   * with its outcome when it ends first; not while it waits behind others.
   * Default false: late ack (or, with `acked`, an early ack written already).
   */
  acksEarly?: boolean;
  /**
   * Whether the write of its early acknowledgement ended (written, or
   * failed: its message then comes back after the visibility timeout);
   * until then its lease is renewed, so that it is not redelivered while
   * it runs (a KV file on a full disk). Always false for a late ack,
   * written once the task ended.
   */
  ackEnded: boolean;
  /** When it was handed over (`performance.now()`). */
  started: number;
  /** Its place in the order this worker received its tasks. */
  received: number;
}

/**
 * Shared state of one worker. `broker`, `backend` and `pool` are set when
 * the worker starts.
 */
export class WorkerState {
  /** The app whose tasks run. */
  readonly app: Celery;
  /** The worker's options. */
  readonly options: WorkerOptions;
  /** Node name. */
  readonly hostname: string;
  /** Where task steps are announced. */
  readonly lifecycle: Lifecycle = new Lifecycle();
  /** Tasks handed to the pool, by dispatch number. */
  readonly running: SeqMap<Running> = new SeqMap();
  /** The running tasks whose early acknowledgement waits for their start. */
  readonly startAcks: StartAcks = new StartAcks(this);
  /** Dispatch numbers being terminated by a revoke, with the signal number it gave. */
  readonly terminated: Map<number, number> = new Map();
  /** Revoked ids. */
  readonly revoked: RevokedIds = new RevokedIds();
  /** Tasks sent by running tasks (their `children`). */
  readonly children: ChildrenTracker = new ChildrenTracker();
  /** The broker. */
  broker!: Broker;
  /** The result backend, or null without one. */
  backend: ResultBackend | null = null;
  /** The pool. */
  pool!: Pool;
  /** Grows and shrinks the pool (`--autoscale`); null for a fixed pool. */
  readonly autoscaler: Autoscaler | null;
  /** The Lamport clock of events and remote-control replies. */
  readonly clock: LamportClock = new LamportClock();
  /** Time limits set at run time (`time_limit` command), by task name. */
  readonly timeLimits: Map<string, { timeLimit: number | null; softTimeLimit: number | null }> =
    new Map();
  /** The event dispatcher, once started. */
  events: EventDispatcher | null = null;
  readonly #settling = new Set<Promise<void>>();
  /** Settlements a shutdown stopped waiting for, a server they need being unreachable. */
  readonly #leftBehind = new WeakSet<Promise<void>>();
  /** The settlements' waits for a server that is down (a shutdown does not wait them out). */
  readonly outages: OutageWatch = new OutageWatch();
  /**
   * Unacknowledged deliveries of tasks that ended (late ack, or not run)
   * while their settlement is under way (a result store waiting out a
   * backend outage): their leases are renewed, and they keep their slots in
   * the take budget. The others a settlement holds (acknowledged early, or
   * being acknowledged as their tasks run) are only counted
   * ({@link WorkerState.unsettledCount}): their messages need not outlive
   * their tasks.
   */
  readonly unsettled: Set<Delivery> = new Set();
  /** Deliveries of settlements under way not in {@link WorkerState.unsettled}, counted. */
  #ackedUnsettled = 0;
  /**
   * The settlements under way: when each began, and how many of its
   * deliveries are not yet acknowledged (late ack) and acknowledged (early ack).
   */
  readonly #holding = new Set<{ since: number; unacked: number; acked: number }>();
  /** Whoever sleeps now: the take loop, and a shutdown's wait (which may overlap it). */
  readonly #sleepers = new Set<() => void>();

  /**
   * @param app the app
   * @param options the worker's options
   * @param hostname node name
   * @throws {RangeError} for an invalid autoscale range
   */
  constructor(app: Celery, options: WorkerOptions, hostname: string) {
    this.app = app;
    this.options = options;
    this.hostname = hostname;
    this.autoscaler = options.autoscale
      ? new Autoscaler(options.autoscale, {
        pool: () => this.pool,
        reserved: () => this.running.size,
        resized: () => this.wake(),
      })
      : null;
  }

  /**
   * Publish through the app.
   *
   * @param message the message
   * @param target where to
   */
  publish(message: Message, target: PublishTarget): Promise<void> {
    return this.app.publish(message, target);
  }

  /**
   * Send the `task-sent` event of a follow-up just published, when the
   * app's `taskSendSentEvent` is on (Celery's worker sends its chain steps,
   * callbacks and errbacks with `apply_async`, which sends it).
   *
   * @param message the message
   * @param target where it went
   * @param queue its queue
   */
  async sent(message: Message, target: PublishTarget, queue: string): Promise<void> {
    if (this.app.config.taskSendSentEvent) await this.app.events.sent(message, target, queue);
  }

  /**
   * The broker's batch publish (Redis: variadic LPUSHes, in order), when
   * the worker's connection has one; else undefined, and `publishAll`
   * sends a batch through {@link WorkerState.publish} as the client's
   * `sendMany` does, so that an outage retries only the messages that
   * were not sent.
   */
  get publishMany(): ((batch: readonly Publication[]) => Promise<void>) | undefined {
    const broker = this.broker;
    if (!broker.publishMany || this.app[PUBLISHER]) return undefined;
    return (batch) => broker.publishMany!(batch);
  }

  /** The app's tasks: a failed chord body's old-style errbacks among them are called in-process. */
  get tasks(): ReadonlyMap<string, Task<never, unknown>> {
    return this.app.tasks;
  }

  /** Seconds settlement steps are retried while a server is down (the app's `outageRetryLimit`). */
  get outageRetryLimit(): number {
    return this.app.config.outageRetryLimit;
  }

  /**
   * Write a settlement (tracked until done). Until it is written, the
   * deliveries of ended tasks it acknowledges or parks, and `held`, keep
   * their slots ({@link WorkerState.slowSettling}); the unacknowledged ones of tasks
   * that ended stay in {@link WorkerState.unsettled}. When it fails (a
   * server down for longer than `outageRetryLimit`), the deliveries of
   * ended tasks it was to acknowledge are parked with the reason, once.
   *
   * The early acknowledgements of running tasks (written as they start)
   * do not depend on the rest: when a step before them fails (a store of
   * STARTED, or of REVOKED for a task of the same batch), they are still
   * written, and those tasks' deliveries are not parked. They are not
   * kept: their tasks hold their slots, and when the acknowledgement
   * itself fails (the broker is down past the limit) the message stays
   * unacknowledged and comes back after the visibility timeout, where one
   * whose result is stored is not run again (a suppressed duplicate).
   * Keeping them until the write's reply kept every task's decoded message
   * past two scavenges on a drain: each was promoted to the old generation
   * (0.8 KB per task; +20 MiB RSS).
   *
   * @param s the batch
   * @param held other deliveries it settles (acknowledged early: only their results remain)
   */
  settle(s: Settlement, held: readonly { delivery: Delivery; acked: boolean }[] = []): void {
    if (s.empty) return;
    // Those of running tasks hold no slot here: their tasks hold theirs.
    const ended = this.#ended(s.acks);
    const mine = [
      ...ended.map((delivery) => ({ delivery, acked: false })),
      ...s.rejects.map((r) => ({ delivery: r.delivery, acked: false })),
    ];
    // The closures keep no early acknowledgement of a running task.
    let parkable: readonly Delivery[] = ended;
    this.track(async () => {
      try {
        await settle(s, this);
      } catch (err) {
        const seqs = s.startedAcks.splice(0);
        try {
          await this.#ackStarted(s.acks, parkable);
        } finally {
          this.acksEnded(seqs);
        }
        throw err;
      }
      parkable = [];
    }, { held: [...mine, ...held], parkOnFailure: () => parkable });
  }

  /**
   * The writes of the early acknowledgements of running tasks `seqs`
   * ended: their leases are no longer renewed ({@link Running.ackEnded}).
   * Those that ended meanwhile are gone, with nothing of them left.
   *
   * @example
   * ```ts ignore
   * await broker.ack(deliveries);
   * state.acksEnded(seqs);
   * ```
   *
   * @param seqs their dispatch numbers
   */
  acksEnded(seqs: readonly number[]): void {
    for (const seq of seqs) {
      const r = this.running.get(seq);
      if (r) r.ackEnded = true;
    }
  }

  /**
   * Write the early acknowledgements of a failed settlement (those of
   * tasks that were running when it began: `acks` less `ended`), which do
   * not depend on its results; a failure is logged (they come back after
   * the visibility timeout).
   */
  async #ackStarted(acks: readonly Delivery[], ended: readonly Delivery[]): Promise<void> {
    const done = new Set(ended);
    const started = acks.filter((d) => !done.has(d));
    if (started.length === 0) return;
    try {
      await this.broker.ack(started);
    } catch (err) {
      log.error(
        "Cannot acknowledge {n} started task(s) whose settlement failed ({error}): they " +
          "come back after the visibility timeout",
        { n: started.length, error: (err as Error).message },
      );
    }
  }

  /**
   * Those of `deliveries` whose tasks do not run now (apart from `settle`, whose closures would
   * otherwise keep what they see).
   *
   * @param deliveries some deliveries
   * @returns those of tasks that ended (or never ran)
   */
  #ended(deliveries: readonly Delivery[]): Delivery[] {
    if (deliveries.length === 0 || this.running.size === 0) return [...deliveries];
    const running = new Set<Delivery>();
    this.running.forEach((r) => running.add(r.delivery));
    return deliveries.filter((d) => !running.has(d));
  }

  /**
   * Start a settling step, keep its promise until it ends; log its failure.
   *
   * @example
   * ```ts ignore
   * state.track(() => settleRetries(due, io), { held: due });
   * ```
   *
   * @param start the step (run under {@link WorkerState.outages})
   * @param deliveries what it settles (kept in {@link WorkerState.unsettled} until it ends),
   *   and which unacknowledged ones to park if it fails (asked when it failed)
   */
  track(
    start: () => Promise<void>,
    deliveries: {
      held?: readonly { delivery: Delivery; acked: boolean }[];
      parkOnFailure?: () => readonly Delivery[];
    } = {},
  ): void {
    // The closures below keep what they need and no more (not `deliveries`, not `held`): a
    // settlement under way must not keep the messages of tasks that ended, decoded, past two
    // scavenges, or they are promoted to the old generation, one per task on a drain.
    const { kept, acked } = this.#hold(deliveries.held ?? []);
    const holding = { since: performance.now(), unacked: kept.length, acked };
    if (kept.length + acked > 0) this.#holding.add(holding);
    this.#ackedUnsettled += acked;
    const parkOnFailure = deliveries.parkOnFailure;
    const p: Promise<void> = this.outages.run(start).catch(async (err) => {
      // Left behind by a shutdown during an outage (which said so): it fails as the app closes,
      // and its unacknowledged messages stay with the broker, for redelivery.
      const behind = this.#leftBehind.has(p);
      log[behind ? "debug" : "error"]("Settling failed: {error}", {
        error: (err as Error).message,
      });
      if (!behind) await this.#parkUnsettled(parkOnFailure?.() ?? [], err as Error);
    }).finally(() => {
      for (const d of kept) this.unsettled.delete(d);
      this.#ackedUnsettled -= acked;
      this.#holding.delete(holding);
      this.#settling.delete(p);
      this.wake();
    });
    this.#settling.add(p);
  }

  /**
   * Put a settlement's unacknowledged deliveries in {@link WorkerState.unsettled}.
   *
   * @param held what it settles
   * @returns the deliveries put there, and how many acknowledged ones it holds besides
   */
  #hold(
    held: readonly { delivery: Delivery; acked: boolean }[],
  ): { kept: Delivery[]; acked: number } {
    const kept: Delivery[] = [];
    let acked = 0;
    for (const h of held) {
      if (h.acked) acked++;
      else kept.push(h.delivery);
    }
    for (const d of kept) this.unsettled.add(d);
    return { kept, acked };
  }

  /**
   * Park, once, the messages of tasks that ran but whose settlement failed
   * (their results or follow-ups could not be written within
   * `outageRetryLimit`): an operator requeues them once the servers are
   * back. Each one parked is announced (`rejected`, kind `unsettled`). If
   * parking fails too, they stay unacknowledged and come back after the
   * visibility timeout (or when the AMQP connection closes).
   */
  async #parkUnsettled(deliveries: readonly Delivery[], err: Error): Promise<void> {
    if (deliveries.length === 0) return;
    const reason = `its result, follow-ups or acknowledgement could not be written within ` +
      `outageRetryLimit (${this.outageRetryLimit} s): ${err.message}; requeue it once the ` +
      `servers are back`;
    const parks = new Settlement();
    // They ran (received before): not at intake.
    for (const delivery of deliveries) {
      parks.refuse({
        type: "rejected",
        delivery,
        req: null,
        ...taskOf(delivery),
        reason,
        kind: "unsettled",
        atIntake: false,
      });
    }
    let written: readonly Rejection[] | void;
    try {
      written = await this.broker.reject(parks.rejects);
    } catch (parkErr) {
      log.error(
        "Cannot park {n} message(s) whose settlement failed ({error}): they come back " +
          "after the visibility timeout",
        { n: deliveries.length, error: (parkErr as Error).message },
      );
      return;
    }
    // Announced once parked (logged, counted in the worker's `parked`).
    announceParks(this.lifecycle, parks.parked, written);
  }

  /**
   * How many deliveries of ended tasks keep their slots in the take budget.
   * One not yet acknowledged (late ack: its acknowledgement is part of the
   * settlement) always does, until its settlement ends: the prefetch bounds
   * unacknowledged messages, as in Celery. An acknowledged one (early ack:
   * only its result remains to store) does once its settlement is under way
   * for {@link SLOW_SETTLEMENT_MS} or more, or while one waits out an
   * outage, so that a worker whose result backend is down or stalls takes
   * no more than its prefetch; a prompt store (a few ms) holds no slot, and
   * the next take does not wait for its round trip.
   *
   * @example
   * ```ts ignore
   * const busy = state.running.size + state.slowSettling();
   * ```
   *
   * @param now `performance.now()`
   * @returns deliveries
   */
  slowSettling(now: number = performance.now()): number {
    if (this.#holding.size === 0) return 0;
    const total = this.unsettledCount;
    if (this.outages.waiting) return total;
    let n = 0;
    for (const h of this.#holding) {
      n += h.unacked + (now - h.since >= SLOW_SETTLEMENT_MS ? h.acked : 0);
    }
    return Math.min(n, total);
  }

  /**
   * How many deliveries of ended tasks have a settlement under way:
   * {@link WorkerState.unsettled}, and the acknowledged ones.
   *
   * @example
   * ```ts ignore
   * if (state.unsettledCount === 0) log.info("every outcome is written");
   * ```
   */
  get unsettledCount(): number {
    return this.unsettled.size + this.#ackedUnsettled;
  }

  /** A shutdown stops waiting for the settlements under way: their failures are expected. */
  leaveSettlingBehind(): void {
    for (const p of this.#settling) this.#leftBehind.add(p);
  }

  /** Wait until every tracked settlement has ended. */
  async drainSettling(): Promise<void> {
    while (this.#settling.size > 0) await Promise.allSettled([...this.#settling]);
  }

  /** Wake the consume loop and a waiting shutdown. */
  wake(): void {
    const sleepers = [...this.#sleepers];
    this.#sleepers.clear();
    for (const r of sleepers) r();
  }

  /**
   * Sleep until {@link WorkerState.wake}, or at most `ms` milliseconds.
   *
   * @param ms the most to sleep; default until woken
   * @returns when woken
   */
  sleep(ms: number = Infinity): Promise<void> {
    return new Promise<void>((r) => {
      const timer = ms === Infinity ? undefined : setTimeout(() => wake(), ms);
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        r();
      };
      this.#sleepers.add(wake);
    });
  }
}
