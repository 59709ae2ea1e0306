/**
 * What the worker takes from its broker, and when: the queues it consumes
 * (changed at run time by `add_consumer` / `cancel_consumer`) and the take
 * loop, which asks for as many messages as the free slots, the prefetch
 * window (`prefetch_window.ts`) and the ETA task limit allow
 * ({@link takeBudget}, pure), retries a failed take with a back-off and
 * hands what it took to the intake.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { BrokerConnectionError } from "../broker/errors.ts";
import type { Delivery, QueueBinding } from "../broker/port.ts";
import type { Intake } from "./intake.ts";
import { receiveOrPark } from "./last_resort.ts";
import { poolSlots } from "./pool_setup.ts";
import { PrefetchWindow } from "./prefetch_window.ts";
import { takeAllowance } from "./scale_limits.ts";
import type { WorkerState } from "./worker_state.ts";

const log = getLogger(["celeriac", "worker"]);

/** Milliseconds before the first retry of a failed take; doubled up to {@link MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 500;
/** Most milliseconds between retries of a failed take. */
const MAX_BACKOFF_MS = 2000;

/** What {@link takeBudget} decides from. */
export interface TakeState {
  /** The pool's task slots in total. */
  capacity: number;
  /** The prefetch window's limit (messages the worker may hold now). */
  window: number;
  /** Tasks running now, and ended tasks whose settlement holds their slot (WorkerState.slowSettling). */
  running: number;
  /** ETA tasks held now. */
  etaHeld: number;
  /** The most ETA tasks to hold (`etaTaskLimit`); undefined for no limit. */
  etaTaskLimit?: number;
  /** Tasks waiting for a rate-limit token. */
  backlog: number;
}

/** How many messages the worker may take now: see {@link takeBudget}. */
export interface TakeBudget {
  /** The slots the worker fills: the pool's, or the narrower prefetch window. */
  slots: number;
  /** Free slots (running tasks not counted); the window waits on these. */
  room: number;
  /** How many the next take may ask for. */
  free: number;
  /** Whether the worker must not take now (no allowance, or too many wait for a rate token). */
  full: boolean;
}

/**
 * How many messages the worker may take now. Tasks waiting for a rate-limit
 * token do not take slots, but their number is bounded: no take while
 * `max(100, 4 × capacity)` wait.
 *
 * @example
 * ```ts
 * import { takeBudget } from "./consumer.ts";
 * takeBudget({ capacity: 64, window: 8, running: 3, etaHeld: 0, backlog: 0 });
 * // { slots: 8, room: 5, free: 5, full: false }
 * takeBudget({ capacity: 64, window: 8, running: 3, etaHeld: 0, backlog: 256 }).full; // true
 * ```
 *
 * @param state the pool, the window and what the worker holds
 * @returns the slots, the room, the allowance and whether to hold off
 */
export function takeBudget(state: TakeState): TakeBudget {
  const slots = Math.min(state.capacity, state.window);
  const room = slots - state.running;
  const free = takeAllowance(room, state.etaHeld, state.etaTaskLimit);
  const full = free <= 0 || state.backlog >= Math.max(100, 4 * state.capacity);
  return { slots, room, free, full };
}

/**
 * The worker's consumer: its queues and its take loop.
 *
 * @example
 * ```ts ignore
 * const consumer = new Consumer(state, intake, ["celery"]);
 * consumer.start(); // after the pool started
 * consumer.stop();
 * await consumer.done;
 * ```
 */
export class Consumer {
  readonly #s: WorkerState;
  readonly #intake: Intake;
  #queues: string[];
  readonly #bindings = new Map<string, QueueBinding>();
  readonly #window: PrefetchWindow;
  readonly #abort = new AbortController();
  /** Ends the take under way when the queues change, so the next one takes from the new list. */
  #requeued = new AbortController();
  #takeSignal = AbortSignal.any([this.#abort.signal, this.#requeued.signal]);
  readonly #onFatal: (err: BrokerConnectionError) => void;
  #stopped = false;
  #done: Promise<void> = Promise.resolve();
  /** Wakes the loop when a refill wait is over; kept armed across the wake-ups before it. */
  #refillTimer: ReturnType<typeof setTimeout> | undefined;
  /** When {@link Consumer.#refillTimer} fires (`performance.now()` time). */
  #refillDue = 0;

  /**
   * A consumer that takes nothing until {@link Consumer.start}.
   *
   * @param s the worker's state (its pool is read when the loop runs)
   * @param intake where taken messages go
   * @param queues the queues to consume
   * @param onFatal called once, and the loop ends, when a take fails in a way trying again
   *   cannot mend (a non-transient {@link BrokerConnectionError}: a KV file deleted, a password
   *   that changed); the worker then stops
   */
  constructor(
    s: WorkerState,
    intake: Intake,
    queues: readonly string[],
    onFatal: (err: BrokerConnectionError) => void = () => {},
  ) {
    this.#s = s;
    this.#onFatal = onFatal;
    this.#intake = intake;
    this.#queues = [...queues];
    this.#window = new PrefetchWindow({
      size: () => s.pool.concurrency, // follows pool_grow / pool_shrink
      max: poolSlots(s.options),
      fixed: s.options.prefetch,
    });
  }

  /** The queues consumed. */
  get queues(): readonly string[] {
    return this.#queues;
  }

  /**
   * The binding {@link Consumer.add} made for a consumed queue, if any.
   *
   * @param queue the queue
   * @returns its exchange, type and key
   */
  binding(queue: string): QueueBinding | undefined {
    return this.#bindings.get(queue);
  }

  /** Resolves when the take loop has ended (at once if it never started). */
  get done(): Promise<void> {
    return this.#done;
  }

  /**
   * Consume one more queue (declared first, and bound to `binding`'s
   * exchange when given); false when already consumed.
   *
   * @param queue the queue
   * @param binding the queue's binding to a named exchange, if any
   * @returns whether it was added
   */
  async add(queue: string, binding?: QueueBinding): Promise<boolean> {
    if (this.#queues.includes(queue)) return false;
    const broker = this.#s.broker;
    if (binding && broker.bindQueue) {
      await broker.bindQueue(queue, binding);
      this.#bindings.set(queue, binding);
    } else {
      if (binding) {
        log.warn(
          "The {transport} broker has no exchanges: consuming {queue} without binding it to {exchange}",
          { transport: broker.transport, queue, exchange: binding.exchange },
        );
      }
      await broker.declareQueue(queue);
    }
    this.#queues = [...this.#queues, queue];
    this.#queuesChanged();
    log.info("Consuming from {queue}", { queue });
    return true;
  }

  /**
   * Stop consuming a queue; false when it was not consumed. Resolves once
   * the broker holds nothing more from it: what a wait under way claimed
   * is back in the queue (`Broker.releaseQueue`).
   *
   * @param queue the queue
   * @returns whether it was removed
   */
  async cancel(queue: string): Promise<boolean> {
    if (!this.#queues.includes(queue)) return false;
    this.#queues = this.#queues.filter((q) => q !== queue);
    this.#bindings.delete(queue);
    this.#queuesChanged();
    try {
      await this.#s.broker.releaseQueue?.(queue);
    } catch (err) {
      // The claim's lease runs out and a restore sweep returns it.
      log.warn("Could not put back what a wait claimed from {queue}: {error}", {
        queue,
        error: (err as Error).message,
      });
    }
    log.info("No longer consuming from {queue}", { queue });
    return true;
  }

  /**
   * End the take under way (it resolves with what it has, if anything: see
   * `Broker.take`), which waits only on the old queues — an idle worker
   * would otherwise never take from a queue `add_consumer` added.
   */
  #queuesChanged(): void {
    this.#requeued.abort();
    this.#requeued = new AbortController();
    this.#takeSignal = AbortSignal.any([this.#abort.signal, this.#requeued.signal]);
  }

  /**
   * Learn from finished tasks how long they blocked (the prefetch window).
   *
   * @param outcomes finished tasks
   */
  observe(outcomes: readonly { blocked?: number }[]): void {
    this.#window.observe(outcomes);
  }

  /** Begin taking, once the pool has started; nothing is taken after {@link Consumer.stop}. */
  start(): void {
    this.#done = this.#run().finally(() => this.#disarm());
  }

  /** End the loop: a take under way is aborted, no other begins. */
  stop(): void {
    this.#stopped = true;
    this.#abort.abort();
  }

  async #run(): Promise<void> {
    const s = this.#s;
    let backoff = FIRST_BACKOFF_MS;
    while (!this.#stopped) {
      const { slots, room, free, full } = takeBudget({
        capacity: s.pool.capacity,
        window: this.#window.limit,
        running: s.running.size + s.slowSettling(),
        etaHeld: this.#intake.etaHeld,
        etaTaskLimit: s.options.etaTaskLimit,
        backlog: this.#intake.backlog,
      });
      const now = performance.now();
      const wait = this.#window.wait(full ? 0 : room, slots, now);
      if (wait > 0) {
        if (wait !== Infinity) this.#wakeAt(now + wait);
        await s.sleep();
        continue;
      }
      this.#disarm();
      if (this.#queues.length === 0) {
        // Like a Celery worker whose last queue was cancelled: idle, not an error.
        log.info("Consuming from no queue: waiting for add_consumer");
        await this.#until(this.#takeSignal);
        continue;
      }
      let got: Delivery[];
      try {
        got = await s.broker.take(this.#queues, { max: free, signal: this.#takeSignal });
        backoff = FIRST_BACKOFF_MS;
        s.autoscaler?.took(free, got.length);
      } catch (err) {
        if (err instanceof BrokerConnectionError && !err.transient && !this.#stopped) {
          log.error("Cannot take messages: {error}. Trying again cannot help: stopping", {
            error: err.message,
          });
          this.#onFatal(err);
          return;
        }
        log.error("Cannot take messages: {error}; retrying in {ms} ms", {
          error: (err as Error).message,
          ms: backoff,
        });
        // Ends early on stop, and on add_consumer / cancel_consumer: the new queues may work.
        await this.#until(this.#takeSignal, backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        continue;
      }
      if (got.length) await receiveOrPark(s, this.#intake, got);
    }
  }

  /**
   * Wake the loop at `due`. A refill wait ends at the same time however
   * often finished tasks wake the loop before it (each wakes it once, see
   * `WorkerState.wake`): the timer armed for it stays, rather than one
   * cleared and set again per finished task (~15 µs each of a CPU-bound
   * drain's main thread). A timer due up to 1 ms later is set again.
   */
  #wakeAt(due: number): void {
    if (this.#refillTimer !== undefined && this.#refillDue <= due + 1) return;
    clearTimeout(this.#refillTimer);
    this.#refillDue = due;
    this.#refillTimer = setTimeout(() => {
      this.#refillTimer = undefined;
      this.#s.wake();
    }, due - performance.now());
  }

  #disarm(): void {
    if (this.#refillTimer === undefined) return;
    clearTimeout(this.#refillTimer);
    this.#refillTimer = undefined;
  }

  /** Resolves when `signal` aborts, or after `ms` milliseconds when given. */
  #until(signal: AbortSignal, ms?: number): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((r) => {
      const t = ms === undefined ? undefined : setTimeout(() => {
        signal.removeEventListener("abort", done);
        r();
      }, ms);
      const done = () => {
        clearTimeout(t);
        r();
      };
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
