/**
 * Channels of one AMQP session, and the deliveries they hold.
 *
 * A delivery can only be settled on the channel it came from, and only
 * while that channel lives: RabbitMQ closes a channel that acknowledges an
 * unknown delivery tag, and puts the unacknowledged deliveries of a closed
 * channel back in their queues by itself. So every delivery remembers its
 * {@link HeldChannel}, and a settlement for a channel that is gone is
 * dropped (logged at debug level), never sent on another one.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Channel, ConfirmChannel, Message as AmqpMessage } from "amqplib";
import type { AmqpSession } from "./amqp_connection.ts";

const log = getLogger(["celeriac", "broker", "amqp"]);

let opened = 0;

/**
 * A channel, whether it still lives, and how many of its deliveries are
 * not settled yet.
 *
 * @example
 * ```ts ignore
 * const held = await HeldChannel.open(session);
 * const m = await held.channel.get("celery", { noAck: false });
 * if (m) {
 *   held.received(m);
 *   held.hold();
 *   held.settle([m], "ack");
 * }
 * ```
 */
export class HeldChannel<C extends Channel = Channel> {
  /** The amqplib channel. */
  readonly channel: C;
  /** The session it belongs to. */
  readonly session: AmqpSession;
  /** A number unique among the channels of this process. */
  readonly id: number = ++opened;
  #open = true;
  #serverClose: Error | null = null;
  #unsettled = 0;
  readonly #byConsumer = new Map<string, number>();
  #order: number[] = [];
  #head = 0;
  readonly #pending = new Set<number>();

  /**
   * Wrap an open channel.
   *
   * @param channel the channel
   * @param session its session
   */
  constructor(channel: C, session: AmqpSession) {
    this.channel = channel;
    this.session = session;
    channel.on("error", (err: Error) => {
      this.#serverClose ??= err;
      log.debug("AMQP channel closed by the server: {error}", { error: err.message });
    });
    channel.on("close", () => this.#open = false);
  }

  /**
   * Open a plain channel.
   *
   * @param session the session
   * @returns the held channel
   */
  static async open(session: AmqpSession): Promise<HeldChannel<Channel>> {
    return new HeldChannel(await session.model.createChannel(), session);
  }

  /**
   * Open a channel in confirm mode.
   *
   * @param session the session
   * @returns the held channel
   */
  static async openConfirm(session: AmqpSession): Promise<HeldChannel<ConfirmChannel>> {
    return new HeldChannel(await session.model.createConfirmChannel(), session);
  }

  /** Whether the channel (and its connection) still lives. */
  get open(): boolean {
    return this.#open && !this.session.lost.aborted;
  }

  /**
   * Why RabbitMQ closed this channel (amqplib's error: `code` is the reply
   * code, the message quotes RabbitMQ's text); `null` while it did not.
   */
  get serverClose(): Error | null {
    return this.#serverClose;
  }

  /** Deliveries taken on this channel and not settled. */
  get unsettled(): number {
    return this.#unsettled;
  }

  /**
   * Note a delivery received on this channel (held or not yet), so that
   * acknowledgements can cover runs of delivery tags at once.
   *
   * @param message the amqplib message
   */
  received(message: AmqpMessage): void {
    const tag = message.fields.deliveryTag;
    this.#order.push(tag);
    this.#pending.add(tag);
  }

  /**
   * Deliveries of one consumer taken on this channel and not settled: what
   * counts against that consumer's prefetch besides what it buffered.
   *
   * @param consumerTag the consumer's tag
   * @returns how many
   */
  unsettledOf(consumerTag: string): number {
    return this.#byConsumer.get(consumerTag) ?? 0;
  }

  /**
   * Count a delivery as held until it is settled.
   *
   * @param message the amqplib message (its consumer tag is counted too)
   */
  hold(message?: AmqpMessage): void {
    this.#unsettled++;
    const tag = message?.fields.consumerTag;
    if (tag) this.#byConsumer.set(tag, (this.#byConsumer.get(tag) ?? 0) + 1);
  }

  #unhold(messages: readonly AmqpMessage[]): void {
    this.#unsettled -= messages.length;
    for (const m of messages) {
      const tag = m.fields.consumerTag;
      const n = tag ? this.#byConsumer.get(tag) : undefined;
      if (!tag || n === undefined) continue;
      if (n <= 1) this.#byConsumer.delete(tag);
      else this.#byConsumer.set(tag, n - 1);
    }
  }

  /**
   * Put back a received delivery that was never held (`nack` with requeue).
   *
   * @param message the amqplib message
   */
  release(message: AmqpMessage): void {
    this.#pending.delete(message.fields.deliveryTag);
    if (this.open) this.channel.nack(message, false, true);
  }

  /**
   * Settle held deliveries: `ack`, or `nack` with requeue. Where the batch
   * covers every delivery received before one of its own, one frame with
   * `multiple` settles them all. Does nothing (and says so at debug level)
   * when the channel is gone.
   *
   * @param messages the amqplib messages
   * @param how `ack` or `requeue`
   */
  settle(messages: readonly AmqpMessage[], how: "ack" | "requeue"): void {
    if (messages.length === 0) return;
    this.#unhold(messages);
    if (!this.open) {
      log.debug(
        "Dropped the {how} of {n} delivery(ies): their channel is gone and RabbitMQ delivers them again",
        { how, n: messages.length },
      );
      return;
    }
    const batch = new Map(messages.map((m) => [m.fields.deliveryTag, m]));
    while (this.#head < this.#order.length && !this.#pending.has(this.#order[this.#head])) {
      this.#head++;
    }
    let last: AmqpMessage | undefined;
    let i = this.#head;
    while (i < this.#order.length && batch.has(this.#order[i])) last = batch.get(this.#order[i++]);
    const send = (m: AmqpMessage, multiple: boolean) => {
      if (how === "ack") this.channel.ack(m, multiple);
      else this.channel.nack(m, multiple, true);
    };
    try {
      if (last && i - this.#head > 1) {
        send(last, true);
        for (let j = this.#head; j < i; j++) batch.delete(this.#order[j]);
      }
      for (const m of batch.values()) send(m, false);
    } catch (err) {
      log.debug("Could not {how} deliveries: {error}", { how, error: (err as Error).message });
    }
    for (const m of messages) this.#pending.delete(m.fields.deliveryTag);
    if (this.#head > 4096 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Close the channel (its unsettled deliveries go back to their queues). */
  async close(): Promise<void> {
    if (!this.open) return;
    this.#open = false;
    await this.channel.close().catch(() => {});
  }
}

/**
 * One channel per session, opened on first use and again after it closed
 * (a refused declaration closes a channel, not the connection).
 *
 * @example
 * ```ts ignore
 * const admin = new LazyChannel((s) => HeldChannel.open(s));
 * const { channel } = await admin.get(session);
 * await channel.checkQueue("celery");
 * ```
 */
export class LazyChannel<C extends Channel> {
  readonly #openFn: (session: AmqpSession) => Promise<HeldChannel<C>>;
  #current: Promise<HeldChannel<C>> | null = null;

  /**
   * @param open opens a new channel on a session
   */
  constructor(open: (session: AmqpSession) => Promise<HeldChannel<C>>) {
    this.#openFn = open;
  }

  /**
   * The live channel of this session.
   *
   * @param session the current session
   * @returns the channel
   */
  async get(session: AmqpSession): Promise<HeldChannel<C>> {
    while (true) {
      session.lost.throwIfAborted();
      const pending = this.#current;
      if (pending === null) {
        this.#current = this.#openFn(session);
        continue;
      }
      let held: HeldChannel<C>;
      try {
        held = await pending;
      } catch (err) {
        if (this.#current !== pending) continue;
        this.#current = null;
        throw err;
      }
      if (held.open && held.session === session) return held;
      if (this.#current === pending) this.#current = null;
    }
  }
}
