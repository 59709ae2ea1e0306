/**
 * Where `AmqpBroker.take()` gets its messages from: long-lived consumers
 * (`basic.consume`, manual acknowledgements) on one channel per
 * connection, whose deliveries wait in a local buffer until a `take()`
 * hands them out.
 *
 * RabbitMQ's per-channel prefetch (`basic.qos` with `global`) counts every
 * unacknowledged delivery of the channel: the ones handed out and not
 * settled yet, and the ones in the buffer. Before each take it is set to
 * (handed out and unsettled) + `max`, so the buffer never holds more than
 * the caller may still receive. A prefetch can be changed on a live
 * channel; amqplib sends the `basic.qos` in order with the channel's other
 * methods, so a take need not wait for it.
 *
 * @module
 */

import type { Message as AmqpMessage } from "amqplib";
import type { AmqpSession } from "./amqp_connection.ts";
import { HeldChannel } from "./amqp_channel.ts";

/**
 * A delivery waiting in the buffer, not handed out yet.
 *
 * @example
 * ```ts ignore
 * const [first]: Buffered[] = intake.take(["celery"], 1);
 * console.log(first.queue, first.raw.fields.deliveryTag);
 * ```
 */
export interface Buffered {
  /** amqplib's message. */
  readonly raw: AmqpMessage;
  /** The queue it was consumed from. */
  readonly queue: string;
}

/**
 * Consumers on one channel and the deliveries they buffered.
 *
 * @example
 * ```ts ignore
 * const intake = await Intake.open(session);
 * await intake.prepare(["celery"], 8); // prefetch = unsettled + 8
 * if (intake.buffered === 0) await intake.arrival(AbortSignal.timeout(1000));
 * const got = intake.take(["celery"], 8);
 * for (const _ of got) intake.holder.hold(); // handed out: settled later with holder.settle()
 * intake.holder.settle(got.map((b) => b.raw), "ack");
 * await intake.stop(); // cancel the consumers, requeue what is still buffered
 * ```
 */
export class Intake {
  /** The channel; its unsettled count is what `take()` handed out. */
  readonly holder: HeldChannel;
  readonly #consumers = new Map<string, string>();
  #buffer: Buffered[] = [];
  #prefetch = 0;
  readonly #waiters = new Set<() => void>();
  #cancelledByServer = false;

  /**
   * Use {@link Intake.open}.
   *
   * @param holder a fresh channel
   */
  constructor(holder: HeldChannel) {
    this.holder = holder;
    holder.channel.on("close", () => {
      this.#buffer = [];
      this.#notify();
    });
  }

  /**
   * Open a channel for consumers.
   *
   * @param session the connection
   * @returns the intake
   */
  static async open(session: AmqpSession): Promise<Intake> {
    return new Intake(await HeldChannel.open(session));
  }

  /** Whether its channel (and connection) still lives. */
  get open(): boolean {
    return this.holder.open;
  }

  /** Deliveries waiting to be handed out. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** The queues consumed now. */
  get queues(): string[] {
    return [...this.#consumers.keys()];
  }

  /**
   * Whether RabbitMQ cancelled a consumer since the last call (its queue
   * was deleted); the caller declares the queue again.
   *
   * @returns true once per cancellation
   */
  takeServerCancel(): boolean {
    const was = this.#cancelledByServer;
    this.#cancelledByServer = false;
    return was;
  }

  /**
   * Consume exactly `queues` with the channel's prefetch at (unsettled +
   * `max`). Consumers of other queues are cancelled and their buffered
   * deliveries requeued. When consumers start, resolves only after a
   * further round trip, by which time RabbitMQ has sent what was ready.
   *
   * @param queues the queues to consume
   * @param max how many deliveries the caller may still receive
   */
  async prepare(queues: readonly string[], max: number): Promise<void> {
    const stale = this.queues.filter((q) => !queues.includes(q));
    for (const q of stale) await this.#cancel(q);
    if (stale.length) this.#requeueBuffered((b) => !queues.includes(b.queue));
    this.#setPrefetch(this.holder.unsettled + max);
    const fresh = queues.filter((q) => !this.#consumers.has(q));
    for (const q of fresh) {
      const { consumerTag } = await this.holder.channel.consume(
        q,
        (m) => this.#onDelivery(q, m),
        { noAck: false },
      );
      this.#consumers.set(q, consumerTag);
    }
    if (fresh.length) await this.holder.channel.prefetch(this.#prefetch, true);
  }

  #setPrefetch(n: number): void {
    if (n === this.#prefetch) return;
    this.#prefetch = n;
    this.holder.channel.prefetch(n, true).catch(() => {});
  }

  #onDelivery(queue: string, m: AmqpMessage | null): void {
    if (m) {
      this.holder.received(m);
      this.#buffer.push({ raw: m, queue });
    } else {
      this.#consumers.delete(queue);
      this.#cancelledByServer = true;
    }
    this.#notify();
  }

  #notify(): void {
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  /**
   * Take up to `max` buffered deliveries, earlier queues first.
   *
   * @param queues the caller's queues, in order of preference
   * @param max the most to take
   * @returns the deliveries, to be counted as held by the caller
   */
  take(queues: readonly string[], max: number): Buffered[] {
    if (this.#buffer.length === 0) return [];
    if (queues.length > 1) {
      this.#buffer.sort((a, b) => queues.indexOf(a.queue) - queues.indexOf(b.queue));
    }
    return this.#buffer.splice(0, max);
  }

  /**
   * Wait until something is buffered, a consumer was cancelled by
   * RabbitMQ, the channel closed, or one of `stops` aborts. Deliveries
   * read from the socket together with the first are buffered before it
   * resolves.
   *
   * @param stops stop waiting
   */
  arrival(...stops: AbortSignal[]): Promise<void> {
    if (this.#buffer.length > 0 || !this.open || stops.some((s) => s.aborted)) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        for (const s of stops) s.removeEventListener("abort", done);
        this.#waiters.delete(later);
        resolve();
      };
      const later = () => queueMicrotask(done);
      for (const s of stops) s.addEventListener("abort", done, { once: true });
      this.#waiters.add(later);
    });
  }

  async #cancel(queue: string): Promise<void> {
    const tag = this.#consumers.get(queue)!;
    this.#consumers.delete(queue);
    if (this.open) await this.holder.channel.cancel(tag).catch(() => {});
  }

  #requeueBuffered(which: (b: Buffered) => boolean): void {
    const keep: Buffered[] = [];
    for (const b of this.#buffer) {
      if (!which(b)) keep.push(b);
      else this.holder.release(b.raw);
    }
    this.#buffer = keep;
  }

  /**
   * Cancel every consumer, run `then` (which may settle held deliveries:
   * nothing new arrives meanwhile), put what is still buffered back in its
   * queue, and wake the takes waiting for an arrival so that they consume
   * again.
   *
   * @param then runs once the consumers are cancelled
   */
  async stop(then?: () => void): Promise<void> {
    for (const q of this.queues) await this.#cancel(q);
    then?.();
    this.#requeueBuffered(() => true);
    this.#notify();
  }
}
