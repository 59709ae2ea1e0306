/**
 * Taking from RabbitMQ and settling what was taken.
 *
 * - **Consumers, bounded by per-consumer prefetch.** `take(queues, max)`
 *   is fed by long-lived consumers (`basic.consume`) on one channel per
 *   connection (`amqp_intake.ts`), whose deliveries wait in a local
 *   buffer. Each consumer starts with prefetch `max` (`basic.qos` with
 *   `global` false: quorum queues refuse channel-wide prefetch, and
 *   RabbitMQ deprecates it); one that could no longer buffer `max` (its
 *   handed-out deliveries are not settled yet) is replaced by a fresh one
 *   before the take. So RabbitMQ never gives this process more than what
 *   was handed out plus `max` per consumed queue. A take returns what is
 *   buffered (earlier queues first) or waits for the first arrival. When
 *   consumers start, the take waits one more round trip, so that what was
 *   ready is buffered and a take of `max` from a full queue gets `max`.
 *   Consuming other queues cancels the consumers of the old ones and
 *   requeues their buffered deliveries. `requeue()` of deliveries from the
 *   consumers' channel cancels the consumers first and requeues the buffer
 *   after them, so that they are back in front of it.
 * - **No hoarding.** A worker that stops taking (all its slots busy) must
 *   not sit on messages another worker could run: 50 ms after a take
 *   returns without another one starting, or at once when a take's signal
 *   aborts, the consumers are cancelled and every buffered delivery goes
 *   back to its queue (`basic.nack` with requeue: RabbitMQ marks it
 *   redelivered). The next take starts the consumers again. Between two
 *   takes RabbitMQ refills a consumer's buffer up to its prefetch: at most
 *   the `max` it started with, minus what it handed out, plus what was
 *   settled since —
 *   what a worker whose `max` is its free slots can run. A take with a
 *   smaller `max` than the one before leaves the surplus buffered (handed
 *   out by later takes, or back in its queue after those 50 ms) rather
 *   than requeueing it at once.
 * - **Batched acknowledgements.** Settlements are grouped per channel; a
 *   group that covers every delivery received before its last one goes as
 *   one `basic.ack` (or `basic.nack`) with `multiple`.
 * - A take waits out a lost connection and carries on with the new one.
 *   Deliveries of a dead connection are redelivered by RabbitMQ, so their
 *   settlements are dropped.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Message as AmqpMessage } from "amqplib";
import type { HeldChannel } from "./amqp_channel.ts";
import { type AmqpConnection, type AmqpSession, isChannelError } from "./amqp_connection.ts";
import type { Declarations } from "./amqp_declare.ts";
import { Intake } from "./amqp_intake.ts";
import { fromIncoming } from "./amqp_message.ts";
import type { Delivery } from "./port.ts";
import { closeWait } from "./sleep.ts";

const log = getLogger(["celeriac", "broker", "amqp"]);

/**
 * Milliseconds buffered deliveries wait for the next take before they go back to their queues.
 *
 * @example
 * ```ts
 * import { LINGER_MS } from "./amqp_take.ts";
 * LINGER_MS; // 50
 * ```
 */
export const LINGER_MS = 50;

interface Held {
  holder: HeldChannel;
  raw: AmqpMessage;
  settled: boolean;
}

/** Whether any of the signals aborted. */
function stopped(stops: readonly AbortSignal[]): boolean {
  return stops.some((s) => s.aborted);
}

/**
 * One broker's consumers, the deliveries it handed out, and their settlement.
 *
 * @example
 * ```ts ignore
 * import { AmqpTaker } from "./amqp_take.ts";
 * const taker = new AmqpTaker(connection, declarations, closing);
 * const got = await taker.take(["celery"], 8, [AbortSignal.timeout(1000), closing]);
 * taker.settle(got, "ack");
 * ```
 */
export class AmqpTaker {
  readonly #conn: AmqpConnection;
  readonly #declarations: Declarations;
  readonly #closing: AbortSignal;
  readonly #held = new WeakMap<Delivery, Held>();
  #intake: Intake | null = null;
  #turn: Promise<void> = Promise.resolve();
  #linger: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param connection the broker's connection
   * @param declarations the broker's declarations
   * @param closing aborts when the broker closes
   */
  constructor(connection: AmqpConnection, declarations: Declarations, closing: AbortSignal) {
    this.#conn = connection;
    this.#declarations = declarations;
    this.#closing = closing;
  }

  #delivery(holder: HeldChannel, raw: AmqpMessage, queue: string): Delivery {
    const { message, redelivered } = fromIncoming(raw);
    const d: Delivery = {
      ...message,
      queue,
      deliveryTag: `${holder.session.epoch}.${holder.id}.${raw.fields.deliveryTag}`,
      redelivered,
      exchange: raw.fields.exchange,
      routingKey: raw.fields.routingKey,
    };
    holder.hold(raw);
    this.#held.set(d, { holder, raw, settled: false });
    return d;
  }

  /** Keep only deliveries whose channel still lives (the others come back by themselves). */
  #alive(deliveries: Delivery[]): Delivery[] {
    return deliveries.filter((d) => {
      const h = this.#held.get(d)!;
      if (h.holder.open) return true;
      h.settled = true;
      h.holder.settle([h.raw], "ack");
      return false;
    });
  }

  /**
   * Take up to `max` messages, earlier queues first among those buffered,
   * waiting while there are none, until one of `stops` aborts. A lost
   * connection is waited out. The consumers stop {@link LINGER_MS} after
   * a take that got messages, at once after one that did not.
   */
  async take(queues: readonly string[], max: number, stops: AbortSignal[]): Promise<Delivery[]> {
    clearTimeout(this.#linger);
    let got: Delivery[] = [];
    try {
      got = await this.#takeLoop(queues, max, stops);
    } finally {
      this.#scheduleStop(got.length > 0 && !stopped(stops) ? LINGER_MS : 0);
    }
    return got;
  }

  async #takeLoop(
    queues: readonly string[],
    max: number,
    stops: AbortSignal[],
  ): Promise<Delivery[]> {
    while (!stopped(stops)) {
      let session: AmqpSession;
      try {
        session = this.#conn.current ??
          await this.#conn.session({ signal: AbortSignal.any(stops) });
      } catch (err) {
        if (stopped(stops)) return [];
        throw err;
      }
      try {
        const round = await this.#exclusive(stops, () => this.#takeRound(session, queues, max));
        if (!round || round.got.length > 0) return round?.got ?? [];
        await round.intake.arrival(...stops, session.lost);
      } catch (err) {
        if (stopped(stops)) return [];
        if (isChannelError(err, 404)) {
          log.debug("A queue vanished while taking ({error}); declaring it again", {
            error: (err as Error).message,
          });
          this.#declarations.forget();
          continue;
        }
        if (!session.lost.aborted) throw err;
      }
    }
    return [];
  }

  /** Consume the queues with consumers that can buffer `max` and hand out what is buffered. */
  async #takeRound(session: AmqpSession, queues: readonly string[], max: number) {
    for (const q of queues) {
      const info = await this.#declarations.taskQueue(session, q);
      if (info.queueType === "quorum") await this.#declarations.delayedDelivery(session, q);
    }
    const intake = await this.#intakeOf(session);
    const cancelled = intake.takeServerCancel();
    if (cancelled.length > 0) {
      // Celery's worker says so too (kombu's ConsumerCancelled): a queue deleted by hand or by
      // a policy should not go unnoticed.
      log.warn(
        "RabbitMQ cancelled the consumer of queue {queues} (the queue was deleted?): " +
          "declaring it again and consuming",
        { queues: cancelled.join(", ") },
      );
      this.#declarations.forget();
      for (const q of queues) await this.#declarations.taskQueue(session, q);
    }
    await intake.prepare(queues, max);
    const got = this.#alive(
      intake.take(queues, max).map((b) => this.#delivery(intake.holder, b.raw, b.queue)),
    );
    return { intake, got };
  }

  async #intakeOf(session: AmqpSession): Promise<Intake> {
    if (this.#intake?.open && this.#intake.holder.session === session) return this.#intake;
    this.#intake = await Intake.open(session);
    return this.#intake;
  }

  /**
   * Run `fn` once the takes and stops before it are done; `undefined` when
   * one of `stops` aborts first.
   */
  async #exclusive<T>(stops: AbortSignal[], fn: () => Promise<T>): Promise<T | undefined> {
    const before = this.#turn;
    const { promise: mine, resolve: release } = Promise.withResolvers<void>();
    this.#turn = before.then(() => mine);
    const { promise: aborted, resolve } = Promise.withResolvers<void>();
    const abort = () => resolve();
    for (const s of stops) s.addEventListener("abort", abort, { once: true });
    try {
      if (stopped(stops)) return undefined;
      await Promise.race([before, aborted]);
      if (stopped(stops)) return undefined;
      return await fn();
    } finally {
      for (const s of stops) s.removeEventListener("abort", abort);
      release();
    }
  }

  /** In `ms`, cancel the consumers and requeue what they buffered, unless a take comes first. */
  #scheduleStop(ms: number): void {
    clearTimeout(this.#linger);
    if (!this.#intake || this.#closing.aborted) return;
    this.#linger = setTimeout(() => {
      const intake = this.#intake;
      if (intake?.open) this.#exclusive([], () => intake.stop()).catch(() => {});
    }, ms);
  }

  /**
   * Acknowledge or requeue deliveries, batched per channel; deliveries
   * settled already, or not handed out by this taker, are skipped.
   */
  settle(deliveries: readonly Delivery[], how: "ack" | "requeue"): void {
    const byChannel = new Map<HeldChannel, AmqpMessage[]>();
    for (const d of deliveries) {
      const h = this.#held.get(d);
      if (!h || h.settled) continue;
      h.settled = true;
      const list = byChannel.get(h.holder);
      if (list) list.push(h.raw);
      else byChannel.set(h.holder, [h.raw]);
    }
    for (const [holder, raws] of byChannel) holder.settle(raws, how);
  }

  /**
   * Put deliveries back in their queues (`basic.nack` with requeue; RabbitMQ
   * marks them redelivered). A classic queue puts each back at its original
   * place, so those given in the order received are at the head in that
   * order; a quorum queue (RabbitMQ 3.10) returns them behind the messages
   * waiting, in the order given. Deliveries of the consumers' channel go back
   * with the consumers cancelled and, after them, whatever the consumers
   * had buffered, so that they are back in front of it.
   */
  async requeue(deliveries: readonly Delivery[]): Promise<void> {
    const intake = this.#intake;
    const fromIntake = intake?.open &&
      deliveries.some((d) => this.#held.get(d)?.holder === intake.holder);
    if (!fromIntake) return this.settle(deliveries, "requeue");
    await this.#exclusive([], () => intake.stop(() => this.settle(deliveries, "requeue")));
  }

  /**
   * Whether parking `delivery` makes sense: not when its connection is
   * gone (RabbitMQ gives it back by itself, to be judged again).
   */
  parkable(delivery: Delivery): boolean {
    const h = this.#held.get(delivery);
    return !h || h.settled || h.holder.open;
  }

  /**
   * Stop the pending consumer stop and close the consumers' channel (its
   * unacknowledged deliveries go back to their queues), waiting for RabbitMQ's
   * answer `CLOSE_WAIT_MS` at most.
   */
  async close(): Promise<void> {
    clearTimeout(this.#linger);
    // Its Close-Ok comes after RabbitMQ handled the acknowledgements sent before on the
    // channel; amqplib sends the connection's Close ahead of them when it is closed at once
    // (each channel writes through a buffer of its own), and RabbitMQ ignores frames behind
    // it: deliveries acknowledged just before were delivered again.
    const holder = this.#intake?.holder;
    if (holder?.open) await closeWait(holder.close());
  }
}
