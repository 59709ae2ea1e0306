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
 * if (m) held.hold(m);
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
  #unsettled = 0;
  #onIdle: (() => void) | null = null;

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

  /** Deliveries taken on this channel and not settled. */
  get unsettled(): number {
    return this.#unsettled;
  }

  /** Count a delivery as held until it is settled. */
  hold(): void {
    this.#unsettled++;
  }

  /** Run `fn` once nothing is held (at once when nothing is). */
  whenIdle(fn: () => void): void {
    if (this.#unsettled === 0) fn();
    else this.#onIdle = fn;
  }

  /**
   * Settle one delivery: `ack`, or `nack` with requeue. Does nothing (and
   * says so at debug level) when the channel is gone.
   *
   * @param message the amqplib message
   * @param how `ack` or `requeue`
   * @returns whether the settlement was sent
   */
  settle(message: AmqpMessage, how: "ack" | "requeue"): boolean {
    this.#unsettled--;
    let sent = false;
    if (this.open) {
      try {
        if (how === "ack") this.channel.ack(message);
        else this.channel.nack(message, false, true);
        sent = true;
      } catch (err) {
        log.debug("Could not {how} delivery {tag}: {error}", {
          how,
          tag: message.fields.deliveryTag,
          error: (err as Error).message,
        });
      }
    } else {
      log.debug(
        "Dropped the {how} of delivery {tag}: its channel is gone and RabbitMQ delivers it again",
        { how, tag: message.fields.deliveryTag },
      );
    }
    if (this.#unsettled === 0 && this.#onIdle) {
      const fn = this.#onIdle;
      this.#onIdle = null;
      fn();
    }
    return sent;
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
