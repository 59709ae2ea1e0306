/**
 * The channels declarations run on: one shared admin channel, and short
 * channels of their own for checks that may be refused by design.
 *
 * RabbitMQ answers a refused operation (`NOT_FOUND` 404, `PRECONDITION_FAILED`
 * 406) by closing its channel, and amqplib then fails every other operation
 * queued on that channel with "Channel ended, no reply will be
 * forthcoming". So a check whose answer may well be "no" — does the
 * exchange a control request wants its reply on exist? — runs on a channel
 * of its own (a few at a time, so that a flood of such checks opens no more
 * channels than that), and an operation on the admin channel that failed
 * only because another one closed it runs again on a fresh channel.
 *
 * @module
 */

import type { Channel } from "amqplib";
import { HeldChannel, LazyChannel } from "./amqp_channel.ts";
import type { AmqpSession } from "./amqp_connection.ts";
import { AdminChannelClosedError } from "./errors.ts";

/** How many channels of their own checks may hold at once: more checks wait for one. */
const PROBE_CHANNELS = 4;

/** How many times an operation runs again after another one closed its channel. */
const RERUNS = 3;

/**
 * The shared admin channel of a connection, and bounded short channels for
 * checks that may be refused.
 *
 * @example
 * ```ts ignore
 * const admin = new AdminChannels();
 * await admin.run(session, (ch) => ch.assertExchange("celeryev", "topic"));
 * const exists = await admin.probe(session, (ch) => ch.checkExchange("replies")).then(
 *   () => true,
 *   () => false,
 * );
 * ```
 */
export class AdminChannels {
  readonly #shared: LazyChannel<Channel> = new LazyChannel((s) => HeldChannel.open(s));
  #probing = 0;
  readonly #waiting: (() => void)[] = [];

  /**
   * Run `fn` on the admin channel. When it fails because another operation
   * closed the channel (amqplib's error carries no reply code of its own),
   * it runs again on a fresh channel, up to three times.
   *
   * @param session the connection
   * @param fn the operation
   * @returns what `fn` returns
   * @throws {AdminChannelClosedError} when other operations kept closing the
   *   channel under it; its message names what they were refused
   */
  async run<T>(session: AmqpSession, fn: (ch: Channel) => Promise<T>): Promise<T> {
    for (let reruns = 0;; reruns++) {
      const held = await this.#shared.get(session);
      try {
        return await fn(held.channel);
      } catch (err) {
        const closedBy = held.serverClose;
        const own = typeof (err as { code?: unknown })?.code === "number";
        if (own || closedBy === null || closedBy === err || session.lost.aborted) throw err;
        if (reruns >= RERUNS) throw new AdminChannelClosedError(closedBy, err);
      }
    }
  }

  /**
   * Run `fn` on a channel of its own (closed afterwards, when RabbitMQ did
   * not close it), so that a refusal closes no channel other operations use.
   * At most four such channels are open at once (more checks wait).
   *
   * @param session the connection
   * @param fn the check
   * @returns what `fn` returns
   */
  async probe<T>(session: AmqpSession, fn: (ch: Channel) => Promise<T>): Promise<T> {
    while (this.#probing >= PROBE_CHANNELS) await new Promise<void>((ok) => this.#waiting.push(ok));
    this.#probing++;
    try {
      const held = await HeldChannel.open(session);
      try {
        return await fn(held.channel);
      } finally {
        await held.close().catch(() => {});
      }
    } finally {
      this.#probing--;
      this.#waiting.shift()?.();
    }
  }
}
