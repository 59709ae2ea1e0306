/**
 * Publishing to RabbitMQ across reconnects: running an operation on the
 * live connection (once more on the next one when the connection dies
 * meanwhile, within `publishTimeout`), publishing with a publisher
 * confirm, and routing a task message — its queue declared first, an
 * `eta` on a quorum queue sent through native delayed delivery, a message
 * for an exchange that does not exist refused ({@link ExchangeNotFoundError}).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ConfirmChannel } from "amqplib";
import type { Message } from "../protocol/message.ts";
import { parsePyDate } from "../protocol/time.ts";
import { HeldChannel, LazyChannel } from "./amqp_channel.ts";
import type { AmqpConnection, AmqpSession } from "./amqp_connection.ts";
import type { Declarations } from "./amqp_declare.ts";
import { DELAYED_ENTRY_EXCHANGE, delayedRoutingKey } from "./amqp_delayed.ts";
import { toContent, toPublishOptions } from "./amqp_message.ts";
import { batchFailure, ExchangeNotFoundError, type PublishOutcome } from "./errors.ts";
import { MessageRefusedError, MessageUnconfirmedError } from "./message_refused.ts";
import { ledgerOf, refusal, type SendFate, unconfirmed } from "./amqp_send_ledger.ts";
import type { Publication, PublishManyOptions, PublishTarget } from "./port.ts";

const log = getLogger(["celeriac", "broker", "amqp"]);

/**
 * Whole seconds until a task message's `eta` header (0 without one, or
 * when it has passed; at most 2^28 - 1, the longest native delay).
 *
 * @example
 * ```ts
 * import { delaySeconds } from "./amqp_publish.ts";
 * const eta = new Date(Date.now() + 90_500).toISOString();
 * delaySeconds({
 *   body: new Uint8Array(),
 *   contentType: "application/json",
 *   contentEncoding: "utf-8",
 *   headers: { eta },
 *   properties: {},
 * }); // 90
 * ```
 *
 * @param message a task message
 * @returns the delay in whole seconds
 */
export function delaySeconds(message: Message): number {
  const eta = message.headers.eta;
  if (typeof eta !== "string") return 0;
  const ms = parsePyDate(eta).getTime() - Date.now();
  if (!(ms >= 1000)) return 0;
  return Math.min(Math.trunc(ms / 1000), 2 ** 28 - 1);
}

/**
 * What an {@link AmqpPublisher} works with.
 *
 * @example
 * ```ts ignore
 * const parts: AmqpPublisherParts = { connection, declarations, publishTimeoutMs: 30_000, closing };
 * ```
 */
export interface AmqpPublisherParts {
  /** The broker's connection. */
  readonly connection: AmqpConnection;
  /** The broker's declarations (queues, exchanges, delayed delivery). */
  readonly declarations: Declarations;
  /** How long an operation waits for a lost connection to come back. */
  readonly publishTimeoutMs: number;
  /** Aborts when the broker closes (an operation is then not retried). */
  readonly closing: AbortSignal;
}

/**
 * One broker's confirm channel and the operations that publish on it.
 *
 * @example
 * ```ts ignore
 * import { AmqpPublisher } from "./amqp_publish.ts";
 * const publisher = new AmqpPublisher({ connection, declarations, publishTimeoutMs: 30_000, closing });
 * await publisher.publish(message, { routingKey: "celery" });
 * ```
 */
export class AmqpPublisher {
  readonly #parts: AmqpPublisherParts;
  readonly #channel = new LazyChannel((s) => HeldChannel.openConfirm(s));

  /** @param parts the broker's connection, declarations and limits */
  constructor(parts: AmqpPublisherParts) {
    this.#parts = parts;
  }

  /**
   * Run `fn` on the live connection; once more on the next one if the
   * connection died meanwhile, within `publishTimeout` in all (waits for a
   * connection included): no rerun starts after it.
   */
  async withSession<T>(fn: (session: AmqpSession) => Promise<T>): Promise<T> {
    const { connection, publishTimeoutMs, closing } = this.#parts;
    // A time compared on a retry, not a timer: no timer held per publish until it fires.
    // One deadline for the whole operation: each wait for the next connection gets only what is left.
    const deadline = performance.now() + publishTimeoutMs;
    let lost: { err: unknown } | null = null;
    while (true) {
      const session = await connection.session({
        timeoutMs: Math.max(0, deadline - performance.now()),
        limitMs: publishTimeoutMs,
      });
      // A connection that came back too late: no rerun past the deadline.
      if (lost && performance.now() >= deadline) throw lost.err;
      try {
        return await fn(session);
      } catch (err) {
        if (!session.lost.aborted || performance.now() >= deadline || closing.aborted) throw err;
        lost = { err };
        log.debug("Connection lost during an operation; retrying it on the next one");
      }
    }
  }

  /**
   * Publish on the confirm channel of `session`; resolves once RabbitMQ
   * confirmed. When RabbitMQ closed that shared channel for one send's
   * fault (named by its reply: the missing exchange, the oversized body),
   * RabbitMQ had routed every send written before that one, in order (only
   * their confirms were lost with the channel): they resolve as sent; the
   * ones written after it, which RabbitMQ discarded, are published again,
   * each alone on a channel of its own — but a body over the size limit is
   * refused as the first one was. When several sends in flight go to the
   * exchange the reply names, those from the first to the last of them may
   * have been routed and are not published again (see amqp_send_ledger.ts,
   * also for what "sent" cannot tell). When the reply names no send in
   * flight, nothing is published again and every unconfirmed send rejects.
   *
   * @throws {ExchangeNotFoundError} when RabbitMQ refused this message for its missing exchange (404)
   * @throws {MessageRefusedError} when RabbitMQ refused this message itself otherwise
   * @throws {MessageUnconfirmedError} when the reply leaves unknown whether it was routed
   */
  async confirmPublish(
    session: AmqpSession,
    exchange: string,
    routingKey: string,
    message: Message,
  ): Promise<void> {
    const held = await this.#channel.get(session);
    const ledger = ledgerOf(held.channel);
    const seq = ledger.written(exchange, message.body.byteLength);
    try {
      await confirmOn(held.channel, exchange, routingKey, message);
    } catch (err) {
      const close = held.serverClose;
      if (session.lost.aborted || close === null) throw err;
      const fate = ledger.fate(close, seq);
      if (fate === null) throw err;
      await afterClose(session, close, fate, exchange, routingKey, message);
    } finally {
      ledger.settled(seq);
    }
  }

  /**
   * Publish one message; resolves once RabbitMQ confirmed it. To the
   * default exchange, the routing key's queue is declared first (Celery's
   * `task_create_missing_queues`); to Celery's own exchanges
   * (`reply.celery.pidbox`, ...), the exchange is declared as Celery does;
   * to an exchange that does not exist, the message is refused, as
   * RabbitMQ refuses it (kombu raises its `NOT_FOUND` to the caller).
   *
   * @throws {BrokerConnectionError} when the connection stays lost longer than `publishTimeout`
   * @throws {ExchangeNotFoundError} when the target's exchange does not exist (nothing sent)
   */
  async publish(message: Message, target: PublishTarget): Promise<void> {
    await this.withSession(async (session) => {
      const to = await this.#destination(session, message, target, null);
      await this.confirmPublish(session, to.exchange, to.routingKey, message);
    });
  }

  /**
   * Where a message goes: its target's queue declared or exchange ensured
   * (once per queue or exchange in `routed`, for a batch), through the delayed-delivery
   * exchanges for an `eta` on a quorum queue. Throws an
   * {@link ExchangeNotFoundError} when its exchange does not exist.
   */
  async #destination(
    session: AmqpSession,
    message: Message,
    target: PublishTarget,
    routed: Map<string, boolean> | null,
  ): Promise<{ exchange: string; routingKey: string }> {
    const declarations = this.#parts.declarations;
    const exchange = target.exchange ?? "";
    const routingKey = target.routingKey;
    if (exchange === "") {
      const key = routed && `\u0000${routingKey}`;
      let quorum = key ? routed.get(key) : undefined;
      if (quorum === undefined) {
        quorum = (await declarations.taskQueue(session, routingKey)).queueType === "quorum";
        if (key) routed!.set(key, quorum);
      }
      const delay = quorum ? delaySeconds(message) : 0;
      if (delay >= 1 && await declarations.delayedDelivery(session, routingKey)) {
        return {
          exchange: DELAYED_ENTRY_EXCHANGE,
          routingKey: delayedRoutingKey(delay, routingKey),
        };
      }
      return { exchange, routingKey };
    }
    let exists = routed?.get(exchange);
    if (exists === undefined) {
      exists = await declarations.ensureExchange(session, exchange);
      routed?.set(exchange, exists);
    }
    if (!exists) throw new ExchangeNotFoundError(exchange, routingKey);
    return { exchange, routingKey };
  }

  /**
   * Publish many messages on the confirm channel with their confirms in
   * flight together: each target is routed once (as {@link publish} routes
   * it), then every message is written, in order, and the batch resolves
   * once RabbitMQ confirmed them all. When the connection dies part way,
   * the messages not confirmed yet are published again on the next one
   * (within `publishTimeout`; at least once). `signal` stops the batch until
   * its messages are written (nothing sent, rejects with its reason), not
   * after. A target whose exchange does not exist refuses the batch before
   * anything is written ({@link ExchangeNotFoundError}, nothing sent). When
   * it fails after a message was written, rejects with a
   * {@link BatchPublishError} telling which RabbitMQ confirmed (sent) and
   * which it may have (unknown).
   */
  async publishMany(
    batch: readonly Publication[],
    options: PublishManyOptions = {},
  ): Promise<void> {
    const signal = options.signal;
    signal?.throwIfAborted();
    const outcomes = new Array<PublishOutcome>(batch.length).fill("unsent");
    let refused: MessageRefusedError | ExchangeNotFoundError | MessageUnconfirmedError | null =
      null;
    try {
      await this.withSession(async (session) => {
        refused = null;
        const routed = new Map<string, boolean>();
        // Every target routed before anything is written: a missing exchange refuses the batch.
        const to: { exchange: string; routingKey: string }[] = [];
        for (let i = 0; i < batch.length; i++) {
          if (outcomes[i] === "sent") continue;
          to[i] = await this.#destination(session, batch[i].message, batch[i].target, routed);
        }
        signal?.throwIfAborted();
        const held = await this.#channel.get(session);
        const channel = held.channel;
        const ledger = ledgerOf(channel);
        const seqs = new Map<number, number>();
        const confirms: Promise<void>[] = [];
        try {
          for (let i = 0; i < batch.length; i++) {
            if (outcomes[i] === "sent") continue;
            const dest = to[i];
            const { message } = batch[i];
            outcomes[i] = "unknown";
            const seq = ledger.written(dest.exchange, message.body.byteLength);
            seqs.set(i, seq);
            confirms.push(
              new Promise<void>((resolve, reject) => {
                (channel as ConfirmChannel).publish(
                  dest.exchange,
                  dest.routingKey,
                  toContent(message.body),
                  toPublishOptions(message),
                  (err) => {
                    if (err) return reject(err instanceof Error ? err : new Error(String(err)));
                    ledger.settled(seq);
                    outcomes[i] = "sent";
                    resolve();
                  },
                );
              }),
            );
          }
          const settled = await Promise.allSettled(confirms);
          const failed = settled.find((r) => r.status === "rejected");
          if (!failed) return;
          const close = held.serverClose;
          if (session.lost.aborted || close === null) throw failed.reason;
          // RabbitMQ closed the shared channel for one send's fault: those written before it were
          // routed (in order), those after it discarded and published again alone (unless over
          // the size limit that refused it).
          for (const [i, seq] of seqs) {
            if (outcomes[i] === "sent") continue;
            const fate = ledger.fate(close, seq);
            // The reply names no send in flight (then none, the first unconfirmed one included).
            if (fate === null) throw failed.reason;
            try {
              const { exchange, routingKey } = to[i];
              await afterClose(session, close, fate, exchange, routingKey, batch[i].message);
              outcomes[i] = "sent";
            } catch (err) {
              // Maybe routed: not published again (twice is worse than once), left "unknown".
              if (err instanceof MessageUnconfirmedError) refused ??= err;
              else if (err instanceof MessageRefusedError || err instanceof ExchangeNotFoundError) {
                outcomes[i] = "unsent";
                refused ??= err;
              } else throw err;
            }
          }
        } finally {
          for (const seq of seqs.values()) ledger.settled(seq);
        }
      });
      if (refused) throw refused;
    } catch (err) {
      throw batchFailure(outcomes, err);
    }
  }
}

/** Publish on a confirm channel; resolves once RabbitMQ confirmed. */
function confirmOn(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  message: Message,
): Promise<void> {
  const content = toContent(message.body);
  const options = toPublishOptions(message);
  return new Promise<void>((resolve, reject) => {
    channel.publish(exchange, routingKey, content, options, (err) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve();
    });
  });
}

/**
 * Publish on a confirm channel of its own, closed after: when RabbitMQ closed
 * a shared channel, a message it discarded is sent again this way, and its
 * closing of this channel is this message's fault. Only for messages written
 * after the one RabbitMQ refused there: those written before it were routed.
 *
 * @example
 * ```ts ignore
 * await publishAlone(session, "", "celery", message);
 * ```
 *
 * @param session the live session
 * @param exchange the exchange (`""`: the default one)
 * @param routingKey the routing key
 * @param message the message
 * @throws {ExchangeNotFoundError} when RabbitMQ refused it for its missing exchange (404)
 * @throws {MessageRefusedError} when RabbitMQ refused this message itself otherwise
 */
async function publishAlone(
  session: AmqpSession,
  exchange: string,
  routingKey: string,
  message: Message,
): Promise<void> {
  log.debug("RabbitMQ closed the publishing channel; publishing to {key} again alone", {
    key: routingKey,
  });
  const held = await HeldChannel.openConfirm(session);
  try {
    await confirmOn(held.channel, exchange, routingKey, message);
  } catch (err) {
    const close = held.serverClose;
    if (session.lost.aborted || close === null) throw err;
    throw refusal(close, exchange, routingKey);
  } finally {
    await held.close();
  }
}

/**
 * A send whose confirm RabbitMQ's close of the shared channel lost, as its
 * fate by the close's reply says (amqp_send_ledger.ts): routed (resolves),
 * refused or left unknown (rejects), or discarded (published again alone on
 * a channel of its own).
 *
 * @example
 * ```ts ignore
 * await afterClose(session, held.serverClose!, ledger.fate(close, seq) ?? "discarded", "", "celery", message);
 * ```
 *
 * @param session the live session
 * @param close the shared channel's close error
 * @param fate the send's fate
 * @param exchange the exchange (`""`: the default one)
 * @param routingKey the routing key
 * @param message the message
 * @throws {ExchangeNotFoundError} when RabbitMQ refused it for its missing exchange (404)
 * @throws {MessageRefusedError} when RabbitMQ refused it otherwise
 * @throws {MessageUnconfirmedError} when the reply leaves unknown whether it was routed
 */
export async function afterClose(
  session: AmqpSession,
  close: Error,
  fate: SendFate,
  exchange: string,
  routingKey: string,
  message: Message,
): Promise<void> {
  if (fate === "sent") return;
  if (fate === "refused") throw refusal(close, exchange, routingKey);
  if (fate === "unknown") throw unconfirmed(close, exchange, routingKey);
  await publishAlone(session, exchange, routingKey, message);
}
