/**
 * Where `AmqpBroker.take()` gets its messages from: long-lived consumers
 * (`basic.consume`, manual acknowledgements) on one channel per
 * connection, whose deliveries wait in a local buffer until a `take()`
 * hands them out.
 *
 * Prefetch is per consumer (`basic.qos` with `global` false), never per
 * channel: quorum queues refuse channel-wide prefetch (RabbitMQ answers
 * `540 NOT_IMPLEMENTED` and closes the connection) and RabbitMQ is phasing
 * it out for classic queues too. A consumer's prefetch is fixed when it
 * starts and counts only its own unacknowledged deliveries: those it
 * buffered and those handed out and not settled yet. A consumer started
 * with prefetch `max` thus never buffers more than `max`; as handed-out
 * deliveries are settled, RabbitMQ refills its buffer. Before each take,
 * a consumer that could no longer buffer `max` (prefetch minus what it
 * handed out and is not settled) is replaced by a fresh one with prefetch
 * `max`: cancelling a consumer leaves its deliveries with the channel, to
 * be handed out and settled as before.
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
 * await intake.prepare(["celery"], 8); // a consumer that can still buffer 8
 * if (intake.buffered === 0) await intake.arrival(AbortSignal.timeout(1000));
 * const got = intake.take(["celery"], 8);
 * for (const b of got) intake.holder.hold(b.raw); // handed out: settled later with holder.settle()
 * intake.holder.settle(got.map((b) => b.raw), "ack");
 * await intake.stop(); // cancel the consumers, requeue what is still buffered
 * ```
 */
export class Intake {
  /** The channel; its unsettled count is what `take()` handed out. */
  readonly holder: HeldChannel;
  readonly #consumers = new Map<string, { tag: string; prefetch: number }>();
  #buffer: Buffered[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #cancelledByServer = new Set<string>();

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
   * The queues whose consumer RabbitMQ cancelled since the last call (the
   * queue was deleted); the caller declares them again.
   *
   * @returns each queue once per cancellation
   */
  takeServerCancel(): string[] {
    const queues = [...this.#cancelledByServer];
    this.#cancelledByServer.clear();
    return queues;
  }

  /**
   * Consume exactly `queues`, each through a consumer that can buffer
   * `max` more deliveries (per-consumer prefetch). Consumers of other
   * queues are cancelled and their buffered deliveries requeued. When
   * consumers start, resolves only after a further round trip, by which
   * time RabbitMQ has sent what was ready.
   *
   * @param queues the queues to consume
   * @param max how many deliveries the caller may still receive
   */
  async prepare(queues: readonly string[], max: number): Promise<void> {
    const stale = this.queues.filter((q) => !queues.includes(q));
    for (const q of stale) await this.#cancel(q);
    if (stale.length) this.#requeueBuffered((b) => !queues.includes(b.queue));
    const starved = queues.filter((q) => {
      const c = this.#consumers.get(q);
      return c !== undefined && c.prefetch - this.holder.unsettledOf(c.tag) < max;
    });
    for (const q of starved) await this.#cancel(q);
    const fresh = queues.filter((q) => !this.#consumers.has(q));
    if (fresh.length === 0) return;
    const { channel } = this.holder;
    await channel.prefetch(max, false);
    for (const q of fresh) {
      const consumer = { tag: "", prefetch: max };
      this.#consumers.set(q, consumer);
      try {
        const { consumerTag } = await channel.consume(
          q,
          (m) => this.#onDelivery(q, m, consumer),
          { noAck: false },
        );
        consumer.tag = consumerTag;
      } catch (err) {
        this.#consumers.delete(q);
        throw err;
      }
    }
    await channel.prefetch(max, false);
  }

  #onDelivery(queue: string, m: AmqpMessage | null, consumer: object): void {
    if (m) {
      this.holder.received(m);
      this.#buffer.push({ raw: m, queue });
    } else if (this.#consumers.get(queue) === consumer) {
      this.#consumers.delete(queue);
      this.#cancelledByServer.add(queue);
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
    const { tag } = this.#consumers.get(queue)!;
    this.#consumers.delete(queue);
    if (this.open && tag) await this.holder.channel.cancel(tag).catch(() => {});
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
