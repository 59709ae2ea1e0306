/**
 * The error of an rpc:// wait whose RabbitMQ connection went away.
 *
 * @module
 */

import { BrokerConnectionError } from "../broker/errors.ts";
import type { StoreEntry } from "./port.ts";

/**
 * A wait for a result over rpc:// ended because the connection to RabbitMQ
 * was lost during it: RabbitMQ deletes the client's auto-delete reply queue
 * with the connection, so a result a worker sends before the client
 * declares it again is dropped, and waiting on could last for good (Celery
 * raises on the lost connection too). The same when RabbitMQ cancelled the
 * reply queue's consumer (the queue was deleted): results sent to it before
 * it is declared again are dropped. A `BrokerConnectionError` (code
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
   *   was down during the wait and is back (the reply queue was declared again);
   *   `cancelled`: RabbitMQ cancelled the reply queue's consumer (the queue was
   *   deleted; it is declared again); `undeclared`: after that, declaring it
   *   again kept failing for the publish timeout (`cause`: the last failure)
   * @param cause what the connection ended with (default none)
   */
  constructor(
    url: string,
    replyQueue: string,
    when: "lost" | "reconnected" | "cancelled" | "undeclared",
    cause?: unknown,
  ) {
    const reason = {
      lost: "the connection was lost while waiting for results",
      reconnected: "the connection was down while waiting for results (it is back now)",
      cancelled: "the reply queue was deleted while waiting for results",
      undeclared: "the reply queue was deleted and could not be declared again",
    }[when];
    const hint = "Read such a task's outcome elsewhere or send it again; a result backend " +
      "that stores results (redis://) keeps them across an outage";
    super(url, cause, { reason, hint });
    const dropped = `RabbitMQ deletes the auto-delete reply queue ${replyQueue} with the ` +
      "connection, so a result sent before it is declared again is dropped";
    this.message = {
      lost: `Lost the connection to ${this.url} while waiting for results: ${dropped}. ${hint}`,
      reconnected: `The connection to ${this.url} was down while waiting for results ` +
        `(it is back now): ${dropped}. ${hint}`,
      cancelled: `RabbitMQ at ${this.url} cancelled the consumer of reply queue ${replyQueue} ` +
        "while waiting for results (the queue was deleted, by hand or by a policy; it is " +
        "declared and consumed again): a result sent to it before that is dropped. " + hint,
      undeclared: `RabbitMQ at ${this.url} cancelled the consumer of reply queue ${replyQueue} ` +
        "(the queue was deleted) and declaring it again kept failing for the publish timeout" +
        `${cause instanceof Error ? ` (last: ${cause.message})` : ""}: nothing was sent, as ` +
        "its result would be dropped. Give the user configure permission on the vhost for " +
        "the reply queue, or raise publish_timeout; it is still declared again in the background",
    }[when];
    this.name = "ResultConnectionLostError";
    this.replyQueue = replyQueue;
  }
}

/**
 * RabbitMQ refused some of the results of an rpc:// `store` (each one
 * alone: a body over its `max_message_size`); the others were sent. The
 * worker stores a small FAILURE in place of each refused one.
 *
 * @example
 * ```ts ignore
 * import { ResultsRefusedError } from "./rpc_errors.ts";
 * const err = new ResultsRefusedError([entry], refusal);
 * console.assert(err.code === "RESULTS_REFUSED" && err.entries.length === 1);
 * ```
 */
export class ResultsRefusedError extends Error {
  /** Stable code for programmatic checks. */
  readonly code: string = "RESULTS_REFUSED";
  /** The entries that were not sent; every other one was. */
  readonly entries: readonly StoreEntry[];

  /**
   * @param entries the entries RabbitMQ refused
   * @param cause the refusal of the first of them (a `MessageRefusedError`)
   */
  constructor(entries: readonly StoreEntry[], cause: Error) {
    super(
      `RabbitMQ refused ${entries.length} result(s) (tasks ${
        entries.map((e) => e.taskId).join(", ")
      }); the others were sent: ${cause.message}`,
      { cause },
    );
    this.name = "ResultsRefusedError";
    this.entries = entries;
  }
}
