/**
 * The options of the AMQP (RabbitMQ) transport ({@link AmqpBrokerOptions})
 * and how the URL's query parameters win over them: the queue
 * declarations' options and the publish timeout a broker is built with.
 *
 * @module
 */

import type { DeclarationOptions } from "./amqp_declare.ts";
import type { BackoffOptions } from "./amqp_state.ts";
import type { QueueType } from "./amqp_topology.ts";
import { type AmqpUrlOptions, publishTimeoutMs } from "./amqp_url.ts";

/**
 * Options of {@link openAmqpBroker}; URL query parameters win over them.
 *
 * @example Priority queues, as Celery's `task_queue_max_priority = 10`
 * ```ts
 * import { type AmqpBrokerOptions, openAmqpBroker } from "@celeriac/celeriac/transports";
 * const options: AmqpBrokerOptions = { maxPriority: 10, publishTimeout: 10 };
 * // amqp://...?max_priority=10 in the URL would do the same
 * const connect = (url: string) => openAmqpBroker(url, options);
 * ```
 */
export interface AmqpBrokerOptions {
  /**
   * Declare task queues with `x-max-priority` (Celery
   * `task_queue_max_priority`). Must match how the queues already exist.
   * Default: none.
   */
  maxPriority?: number;
  /** Seconds `publish()` waits for a lost connection to come back. Default 30. */
  publishTimeout?: number;
  /**
   * Seconds a listing or requeue of parked messages waits for another
   * process's to end (one at a time per vhost), counted from when it was
   * asked for (a call queued behind this broker's own included), before it
   * rejects with a `ParkedScanBusyError`. Default 30.
   */
  parkedScanWait?: number;
  /** Reconnection delays. */
  backoff?: BackoffOptions;
  /** Connection name shown by RabbitMQ. Default `celeriac-broker`. */
  connectionName?: string;
  /**
   * Aborts opening: what was opened is closed and the open rejects with
   * the signal's reason (at once, opening nothing, when it already
   * aborted). Default: none.
   */
  signal?: AbortSignal;
  /**
   * Type of the task queues Celeriac declares (Celery 5.5
   * `task_default_queue_type`; URL `queue_type`). Queues that already exist
   * keep their type. Default `classic`.
   */
  queueType?: QueueType;
  /** Types of particular queues, over `queueType` (URL `quorum_queues=a,b`). */
  queueTypes?: Record<string, QueueType>;
  /**
   * Exchange type of task queues (Celery `task_default_exchange_type`; URL
   * `exchange_type`). Native delayed delivery needs `topic`. Default `direct`.
   */
  exchangeType?: "direct" | "topic";
  /**
   * `x-delivery-limit` of quorum task queues (URL `delivery_limit`): a
   * message returned this many times (its worker died, or it was
   * requeued) is dead-lettered to `celeriac.parked` instead of delivered
   * forever. Python workers sharing the queue must declare the same
   * arguments. Default none.
   */
  deliveryLimit?: number;
  /**
   * Type of the 28 native delayed delivery queues (Celery
   * `broker_native_delayed_delivery_queue_type`; URL `delay_queue_type`).
   * Default `quorum`.
   */
  delayQueueType?: QueueType;
}

/**
 * The queue declarations' options of a broker: each from the URL's query,
 * else from the broker's options (`queueTypes`: the URL's names over the
 * options').
 *
 * @example
 * ```ts ignore
 * const declarations = new Declarations(declarationOptions(connection.url, options));
 * ```
 *
 * @param url the parsed broker URL
 * @param options the broker's options
 * @returns the declarations' options
 */
export function declarationOptions(
  url: AmqpUrlOptions,
  options: AmqpBrokerOptions,
): DeclarationOptions {
  return {
    maxPriority: url.maxPriority ?? options.maxPriority,
    queueType: url.queueType ?? options.queueType,
    queueTypes: { ...options.queueTypes, ...url.queueTypes },
    exchangeType: url.exchangeType ?? options.exchangeType,
    deliveryLimit: url.deliveryLimit ?? options.deliveryLimit,
    delayQueueType: url.delayQueueType ?? options.delayQueueType,
  };
}

/**
 * Milliseconds a publish waits for a lost connection: the URL's
 * `publish_timeout`, else the `publishTimeout` option, else 30 s.
 *
 * @example
 * ```ts
 * import { parseAmqpUrl } from "@celeriac/celeriac/transports";
 * publishWaitMs(parseAmqpUrl("amqp://localhost//?publish_timeout=5"), {}); // 5000
 * ```
 *
 * @param url the parsed broker URL
 * @param options the broker's options
 * @returns the wait in milliseconds
 * @throws {TypeError} for a timeout out of range (0.001 to 2147483.647 s)
 */
export function publishWaitMs(url: AmqpUrlOptions, options: AmqpBrokerOptions): number {
  const publishTimeout = url.publishTimeout ?? options.publishTimeout ?? 30;
  return publishTimeoutMs(publishTimeout, `publishTimeout ${publishTimeout}`);
}
