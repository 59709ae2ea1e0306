/**
 * Publishing to RabbitMQ across reconnects: running an operation on the
 * live connection (once more on the next one when the connection dies
 * meanwhile, within `publishTimeout`), publishing with a publisher
 * confirm, and routing a task message — its queue declared first, an
 * `eta` on a quorum queue sent through native delayed delivery, a message
 * for an exchange that does not exist dropped with a warning.
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
import type { PublishTarget } from "./port.ts";

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

  /** Run `fn` on the live connection; once more on the next one if the connection died meanwhile. */
  async withSession<T>(fn: (session: AmqpSession) => Promise<T>): Promise<T> {
    const { connection, publishTimeoutMs, closing } = this.#parts;
    const deadline = AbortSignal.timeout(publishTimeoutMs);
    while (true) {
      const session = await connection.session({ timeoutMs: publishTimeoutMs });
      try {
        return await fn(session);
      } catch (err) {
        if (!session.lost.aborted || deadline.aborted || closing.aborted) throw err;
        log.debug("Connection lost during an operation; retrying it on the next one");
      }
    }
  }

  /** Publish on the confirm channel of `session`; resolves once RabbitMQ confirmed. */
  async confirmPublish(
    session: AmqpSession,
    exchange: string,
    routingKey: string,
    message: Message,
  ): Promise<void> {
    const { channel } = await this.#channel.get(session);
    const content = toContent(message.body);
    const options = toPublishOptions(message);
    await new Promise<void>((resolve, reject) => {
      (channel as ConfirmChannel).publish(exchange, routingKey, content, options, (err) => {
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve();
      });
    });
  }

  /**
   * Publish one message; resolves once RabbitMQ confirmed it. To the
   * default exchange, the routing key's queue is declared first (Celery's
   * `task_create_missing_queues`); to Celery's own exchanges
   * (`reply.celery.pidbox`, ...), the exchange is declared as Celery does;
   * to an exchange that does not exist, the message is dropped with a
   * warning, as RabbitMQ drops unroutable messages.
   *
   * @throws {BrokerConnectionError} when the connection stays lost longer than `publishTimeout`
   */
  async publish(message: Message, target: PublishTarget): Promise<void> {
    const declarations = this.#parts.declarations;
    const exchange = target.exchange ?? "";
    await this.withSession(async (session) => {
      if (exchange === "") {
        const info = await declarations.taskQueue(session, target.routingKey);
        const delay = delaySeconds(message);
        if (
          info.queueType === "quorum" && delay >= 1 &&
          await declarations.delayedDelivery(session, target.routingKey)
        ) {
          const key = delayedRoutingKey(delay, target.routingKey);
          await this.confirmPublish(session, DELAYED_ENTRY_EXCHANGE, key, message);
          return;
        }
      } else if (!await declarations.ensureExchange(session, exchange)) {
        log.warn("Exchange {exchange} does not exist: message for {key} dropped", {
          exchange,
          key: target.routingKey,
        });
        return;
      }
      await this.confirmPublish(session, exchange, target.routingKey, message);
    });
  }
}
