/**
 * The error of an rpc:// wait whose RabbitMQ connection went away.
 *
 * @module
 */

import { BrokerConnectionError } from "../broker/errors.ts";

/**
 * A wait for a result over rpc:// ended because the connection to RabbitMQ
 * was lost during it: RabbitMQ deletes the client's auto-delete reply queue
 * with the connection, so a result a worker sends before the client
 * declares it again is dropped, and waiting on could last for good (Celery
 * raises on the lost connection too). A `BrokerConnectionError` (code
 * `RESULT_CONNECTION_LOST`), so code that handles outages handles it.
 *
 * @example
 * ```ts
 * import { BrokerConnectionError, ResultConnectionLostError } from "@celeriac/celeriac";
 * const err = new ResultConnectionLostError("amqp://guest:secret@127.0.0.1:5672//", "celeriac.replies", "lost");
 * console.assert(err instanceof BrokerConnectionError && err.code === "RESULT_CONNECTION_LOST");
 * console.assert(err.message.startsWith("Lost the connection to amqp://guest:***@127.0.0.1:5672//"));
 * ```
 */
export class ResultConnectionLostError extends BrokerConnectionError {
  /** Stable code for programmatic checks. */
  override readonly code: string = "RESULT_CONNECTION_LOST";
  /** The reply queue the results were waited for on. */
  readonly replyQueue: string;

  /**
   * Describe a wait ended by a lost connection.
   *
   * @param url the RabbitMQ URL (its password is masked in the message)
   * @param replyQueue the client's reply queue
   * @param when `lost`: the connection was lost just now; `reconnected`: it
   *   was down during the wait and is back (the reply queue was declared again)
   * @param cause what the connection ended with (default none)
   */
  constructor(
    url: string,
    replyQueue: string,
    when: "lost" | "reconnected",
    cause?: unknown,
  ) {
    const reason = when === "lost"
      ? "the connection was lost while waiting for results"
      : "the connection was down while waiting for results (it is back now)";
    const hint = "Read such a task's outcome elsewhere or send it again; a result backend " +
      "that stores results (redis://) keeps them across an outage";
    super(url, cause, { reason, hint });
    const dropped = `RabbitMQ deletes the auto-delete reply queue ${replyQueue} with the ` +
      "connection, so a result sent before it is declared again is dropped";
    this.message = when === "lost"
      ? `Lost the connection to ${this.url} while waiting for results: ${dropped}. ${hint}`
      : `The connection to ${this.url} was down while waiting for results (it is back now): ` +
        `${dropped}. ${hint}`;
    this.name = "ResultConnectionLostError";
    this.replyQueue = replyQueue;
  }
}
