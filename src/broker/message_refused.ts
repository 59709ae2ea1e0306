/**
 * The error of a message RabbitMQ refused by closing the channel it was
 * published on (a 406 `PRECONDITION_FAILED` for a body over its
 * `max_message_size`, an invalid property), and of one whose fate that
 * close left unknown (amqp_send_ledger.ts).
 *
 * @module
 */

/**
 * RabbitMQ refused one message: it closed the channel the message was
 * published on with a channel error. The message was not sent. Of the
 * others in flight on that channel, those written before it had been routed
 * (RabbitMQ handles a channel's frames in order) and count as sent; those
 * written after it, which RabbitMQ discarded, are published again on a new
 * channel. A 404 (its exchange does not exist) is an `ExchangeNotFoundError`
 * instead.
 *
 * @example
 * ```ts
 * import { MessageRefusedError } from "@celeriac/celeriac";
 * const err = new MessageRefusedError("", "celery", 406, "PRECONDITION_FAILED - message size 200 is larger than configured max size 100");
 * console.assert(err.code === "MESSAGE_REFUSED" && err.replyCode === 406);
 * console.assert(err.message.includes("max_message_size"));
 * ```
 */
export class MessageRefusedError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "MESSAGE_REFUSED";
  /** RabbitMQ's reply code (406 for `PRECONDITION_FAILED`). */
  readonly replyCode: number;
  /** RabbitMQ's text, as it sent it. */
  readonly reason: string;

  /**
   * Describe a message RabbitMQ refused.
   *
   * @param exchange the exchange it was published to (`""`: the default one)
   * @param routingKey its routing key
   * @param replyCode RabbitMQ's reply code
   * @param reason RabbitMQ's text
   */
  constructor(exchange: string, routingKey: string, replyCode: number, reason: string) {
    const tooBig = /message size \d+ is larger than/i.test(reason);
    const hint = tooBig
      ? "Send a smaller message: RabbitMQ's max_message_size (128 MiB by default) bounds each " +
        "message; keep large data elsewhere (a file, object storage) and send a reference to it"
      : "Change what RabbitMQ's reason names and send it again";
    super(
      `RabbitMQ refused the message for exchange "${exchange}" and routing key ` +
        `"${routingKey}" (${replyCode}: ${reason}): it was not sent. ${hint}`,
    );
    this.name = "MessageRefusedError";
    this.replyCode = replyCode;
    this.reason = reason;
  }
}

/**
 * RabbitMQ closed the channel a message was published on before confirming
 * it, for another send's fault or this one's, and its reply does not tell
 * which: several unconfirmed sends went to the exchange it refused (deleted
 * or its permission revoked while they were in flight). The message may
 * have been routed, so it is not published again (that could deliver it
 * twice); check whether it arrived before sending it again.
 *
 * @example
 * ```ts
 * import { MessageUnconfirmedError } from "@celeriac/celeriac";
 * const err = new MessageUnconfirmedError("", "celery", 404, "NOT_FOUND - no exchange 'billing' in vhost '/'");
 * console.assert(err.code === "MESSAGE_UNCONFIRMED" && err.replyCode === 404);
 * ```
 */
export class MessageUnconfirmedError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "MESSAGE_UNCONFIRMED";
  /** RabbitMQ's reply code on the close. */
  readonly replyCode: number;
  /** RabbitMQ's text, as it sent it. */
  readonly reason: string;

  /**
   * Describe a message whose fate RabbitMQ's close left unknown.
   *
   * @param exchange the exchange it was published to (`""`: the default one)
   * @param routingKey its routing key
   * @param replyCode RabbitMQ's reply code on the close
   * @param reason RabbitMQ's text
   */
  constructor(exchange: string, routingKey: string, replyCode: number, reason: string) {
    super(
      `RabbitMQ closed the channel before confirming the message for exchange "${exchange}" ` +
        `and routing key "${routingKey}" (${replyCode}: ${reason}), and its reply does not ` +
        "tell whether this message or another one in flight was refused: it may have been " +
        "sent, and is not published again (that could send it twice). Check whether it " +
        "arrived before sending it again; fix what RabbitMQ's reason names",
    );
    this.name = "MessageUnconfirmedError";
    this.replyCode = replyCode;
    this.reason = reason;
  }
}
