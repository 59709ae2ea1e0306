/**
 * The exchanges and queues Celeriac declares on RabbitMQ, with exactly the
 * flags and arguments Celery 5.2 / kombu use for the same names (see
 * `celery-protocol.md` §4.1 and the `amqp/worker/declarations.json`
 * fixture). RabbitMQ refuses a declaration that differs from an existing
 * one (`PRECONDITION_FAILED`), so a mismatch with a Python worker would
 * break both.
 *
 * @module
 */

/**
 * An exchange declaration.
 *
 * @example
 * ```ts
 * import { exchangeDeclaration, type ExchangeDeclaration } from "./amqp_topology.ts";
 * const e: ExchangeDeclaration = exchangeDeclaration("celery.pidbox");
 * e.type; // "fanout"
 * ```
 */
export interface ExchangeDeclaration {
  /** Exchange name. */
  name: string;
  /** `direct`, `fanout` or `topic`. */
  type: "direct" | "fanout" | "topic";
  /** Survives a broker restart. */
  durable: boolean;
}

/**
 * A queue declaration; integer arguments are AMQP `I` as kombu sends them.
 *
 * @example
 * ```ts
 * import { type QueueDeclaration, taskQueueDeclaration } from "./amqp_topology.ts";
 * const q: QueueDeclaration = taskQueueDeclaration("celery", {}).queue;
 * q.durable; // true
 * ```
 */
export interface QueueDeclaration {
  /** Queue name. */
  name: string;
  /** Survives a broker restart. */
  durable: boolean;
  /** Deleted when its last consumer goes. */
  autoDelete: boolean;
  /** Only this connection may use it. */
  exclusive: boolean;
  /** Queue arguments (`x-message-ttl`, `x-expires`, `x-max-priority`, ...). */
  arguments: Record<string, unknown>;
}

/**
 * A queue with the exchange and binding key that route to it.
 *
 * @example
 * ```ts
 * import { type BoundQueue, taskQueueDeclaration } from "./amqp_topology.ts";
 * const b: BoundQueue = taskQueueDeclaration("reports", {});
 * `${b.exchange.name} -[${b.bindingKey}]-> ${b.queue.name}`; // "reports -[reports]-> reports"
 * ```
 */
export interface BoundQueue {
  /** The exchange. */
  exchange: ExchangeDeclaration;
  /** The queue. */
  queue: QueueDeclaration;
  /** Binding key. */
  bindingKey: string;
}

/**
 * Exchanges Celery declares, by name, with Celery's flags; any other
 * exchange used for broadcasts is a non-durable fanout.
 */
const KNOWN_EXCHANGES: Record<string, ExchangeDeclaration> = {
  "celery.pidbox": { name: "celery.pidbox", type: "fanout", durable: false },
  "reply.celery.pidbox": { name: "reply.celery.pidbox", type: "direct", durable: false },
  "celeryev": { name: "celeryev", type: "topic", durable: true },
};

/** kombu's Mailbox queue TTLs (`control_queue_ttl`, `control_queue_expires`), in ms. */
const CONTROL_QUEUE_ARGS = { "x-message-ttl": 300_000, "x-expires": 10_000 };
/** Celery's event queue TTLs (`event_queue_ttl`, `event_queue_expires`), in ms. */
const EVENT_QUEUE_ARGS = { "x-message-ttl": 5_000, "x-expires": 60_000 };

/**
 * The parking queue: durable, holds refused messages with a note in their
 * headers.
 *
 * @example
 * ```ts
 * import { PARKED_QUEUE } from "./amqp_topology.ts";
 * // rabbitmqctl list_queues name messages | grep celeriac.parked
 * PARKED_QUEUE; // "celeriac.parked"
 * ```
 */
export const PARKED_QUEUE = "celeriac.parked";

/**
 * The stream that remembers revoked task ids (see {@link revokedStreamDeclaration}).
 *
 * @example
 * ```ts
 * import { REVOKED_STREAM } from "./amqp_topology.ts";
 * REVOKED_STREAM; // "celeriac.revoked"
 * ```
 */
export const REVOKED_STREAM = "celeriac.revoked";

/**
 * The declaration of an exchange Celeriac publishes or broadcasts to.
 *
 * @example
 * ```ts
 * import { exchangeDeclaration } from "./amqp_topology.ts";
 * exchangeDeclaration("reply.celery.pidbox"); // { name, type: "direct", durable: false }
 * exchangeDeclaration("my.broadcast"); // { name, type: "fanout", durable: false }
 * ```
 *
 * @param name exchange name
 * @returns its declaration
 */
export function exchangeDeclaration(name: string): ExchangeDeclaration {
  return KNOWN_EXCHANGES[name] ?? { name, type: "fanout", durable: false };
}

/**
 * Whether Celeriac knows how Celery declares an exchange (and may declare it
 * before publishing to it).
 *
 * @example
 * ```ts
 * import { isKnownExchange } from "./amqp_topology.ts";
 * isKnownExchange("reply.celery.pidbox"); // true
 * isKnownExchange("billing"); // false
 * ```
 *
 * @param name exchange name
 * @returns true for Celery's own exchanges
 */
export function isKnownExchange(name: string): boolean {
  return Object.hasOwn(KNOWN_EXCHANGES, name);
}

/**
 * RabbitMQ's queue types Celeriac declares task queues as: `classic`, or
 * `quorum` (replicated, Celery 5.5's `task_default_queue_type`).
 *
 * @example
 * ```ts
 * import type { QueueType } from "@celeriac/celeriac/transports";
 * const type: QueueType = "quorum";
 * ```
 */
export type QueueType = "classic" | "quorum";

/**
 * How a task queue is declared.
 *
 * @example
 * ```ts
 * import { type TaskQueueOptions, taskQueueDeclaration } from "./amqp_topology.ts";
 * const options: TaskQueueOptions = { queueType: "quorum", exchangeType: "topic" };
 * taskQueueDeclaration("celery", options).exchange.type; // "topic"
 * ```
 */
export interface TaskQueueOptions {
  /** `x-max-priority` (Celery `task_queue_max_priority`); classic queues only. Default none. */
  maxPriority?: number;
  /** Queue type. Default `classic`. */
  queueType?: QueueType;
  /** The queue's exchange type (Celery `task_default_exchange_type`). Default `direct`. */
  exchangeType?: "direct" | "topic";
  /**
   * Quorum queues only: `x-delivery-limit`, with messages past it
   * dead-lettered to `celeriac.parked`. Default none (no limit).
   */
  deliveryLimit?: number;
}

/**
 * A task queue as Celery declares it: a durable exchange (direct unless
 * configured otherwise) and a durable queue of the same name, bound with
 * the queue name as key. A classic queue gets `x-max-priority` only when a
 * maximum priority is configured; a quorum queue gets
 * `x-queue-type: quorum` as Celery 5.5 declares it, and, with a delivery
 * limit, `x-delivery-limit` and dead-lettering to `celeriac.parked` (a
 * Python worker sharing it must declare the same `queue_arguments`).
 *
 * @example
 * ```ts
 * import { taskQueueDeclaration } from "./amqp_topology.ts";
 * taskQueueDeclaration("celery", { maxPriority: 10 }).queue.arguments; // { "x-max-priority": 10 }
 * taskQueueDeclaration("celery", { queueType: "quorum" }).queue.arguments; // { "x-queue-type": "quorum" }
 * ```
 *
 * @param queue queue name
 * @param options priority, type, exchange type, delivery limit
 * @returns the exchange, queue and binding
 */
export function taskQueueDeclaration(queue: string, options: TaskQueueOptions): BoundQueue {
  const args: Record<string, unknown> = {};
  if (options.queueType === "quorum") {
    args["x-queue-type"] = "quorum";
    if (options.deliveryLimit !== undefined) {
      args["x-delivery-limit"] = options.deliveryLimit;
      args["x-dead-letter-exchange"] = "";
      args["x-dead-letter-routing-key"] = PARKED_QUEUE;
    }
  } else if (options.maxPriority) {
    args["x-max-priority"] = options.maxPriority;
  }
  return {
    exchange: { name: queue, type: options.exchangeType ?? "direct", durable: true },
    queue: { name: queue, durable: true, autoDelete: false, exclusive: false, arguments: args },
    bindingKey: queue,
  };
}

/**
 * A subscriber's own queue on a broadcast exchange, as kombu declares it:
 * `<nodename>.celery.pidbox` (non-durable, auto-delete, 300 s message TTL,
 * expires 10 s after its last consumer) for remote control, and
 * `celeryev.<uuid>` bound with `#` for events.
 *
 * @example
 * ```ts
 * import { subscriberQueueDeclaration } from "./amqp_topology.ts";
 * const b = subscriberQueueDeclaration("celery.pidbox", "celery@host.celery.pidbox");
 * b.queue.arguments; // { "x-message-ttl": 300000, "x-expires": 10000 }
 * b.bindingKey; // ""
 * ```
 *
 * @param exchange the broadcast exchange
 * @param queue the subscriber's queue name
 * @returns the exchange, queue and binding
 */
export function subscriberQueueDeclaration(exchange: string, queue: string): BoundQueue {
  const ex = exchangeDeclaration(exchange);
  return {
    exchange: ex,
    queue: {
      name: queue,
      durable: false,
      autoDelete: true,
      exclusive: false,
      arguments: { ...(ex.type === "topic" ? EVENT_QUEUE_ARGS : CONTROL_QUEUE_ARGS) },
    },
    bindingKey: ex.type === "topic" ? "#" : "",
  };
}

/**
 * The parking queue's declaration.
 *
 * @example
 * ```ts
 * import { parkedQueueDeclaration } from "./amqp_topology.ts";
 * parkedQueueDeclaration().durable; // true
 * ```
 *
 * @returns a durable queue with no arguments
 */
export function parkedQueueDeclaration(): QueueDeclaration {
  return { name: PARKED_QUEUE, durable: true, autoDelete: false, exclusive: false, arguments: {} };
}

/**
 * How long RabbitMQ keeps the revoked stream's entries: 4 hours, the read-back
 * of `listRevoked` (a revoke lasts 3). Earlier versions declared `7D`.
 *
 * @example
 * ```ts
 * import { REVOKED_STREAM_MAX_AGE } from "./amqp_topology.ts";
 * REVOKED_STREAM_MAX_AGE; // "4h"
 * ```
 */
export const REVOKED_STREAM_MAX_AGE = "4h";

/**
 * The stream of revoked ids: a RabbitMQ stream queue, read by every
 * worker without consuming it, from 4 hours back (a revoke lasts 3).
 * Entries older than 4 hours (all a read goes back to) are dropped by
 * RabbitMQ, one small segment at a time; readers also skip entries whose
 * own expiry has passed. A stream declared by an earlier version, with a
 * week's `x-max-age`, is used as it is (see `Declarations.revokedStream`).
 *
 * @example
 * ```ts
 * import { revokedStreamDeclaration } from "./amqp_topology.ts";
 * revokedStreamDeclaration().arguments["x-queue-type"]; // "stream"
 * ```
 *
 * @returns a durable stream queue with a retention age
 */
export function revokedStreamDeclaration(): QueueDeclaration {
  return {
    name: REVOKED_STREAM,
    durable: true,
    autoDelete: false,
    exclusive: false,
    arguments: {
      "x-queue-type": "stream",
      "x-max-age": REVOKED_STREAM_MAX_AGE,
      "x-stream-max-segment-size-bytes": 1_000_000,
    },
  };
}

/**
 * The rpc result backend's reply queue, as Celery's client declares it:
 * named after the client's oid, non-durable, auto-delete, expiring after
 * `result_expires` without use.
 *
 * @example
 * ```ts
 * import { replyQueueDeclaration } from "./amqp_topology.ts";
 * replyQueueDeclaration("e123", 86400).arguments; // { "x-expires": 86400000 }
 * ```
 *
 * @param oid the client's reply queue name
 * @param resultExpires seconds (Celery `result_expires`); 0 sets no expiry
 * @returns the declaration
 */
export function replyQueueDeclaration(oid: string, resultExpires: number): QueueDeclaration {
  return {
    name: oid,
    durable: false,
    autoDelete: true,
    exclusive: false,
    arguments: resultExpires > 0 ? { "x-expires": Math.trunc(resultExpires * 1000) } : {},
  };
}

/**
 * What RabbitMQ's `PRECONDITION_FAILED` answer to a declaration says
 * differs: `inequivalent arg 'x-queue-type' for queue 'q' in vhost '/':
 * received none but current is the value 'quorum' of type 'longstr'`, or
 * `inequivalent arg 'type' for exchange 'q' in vhost '/': received
 * 'direct' but current is 'topic'`. `current` is `none` for an argument
 * the existing one lacks. `null` for any other message.
 *
 * @example
 * ```ts
 * import { parseInequivalentArg } from "./amqp_topology.ts";
 * parseInequivalentArg(
 *   "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': " +
 *     "received none but current is the value 'quorum' of type 'longstr'",
 * ); // { of: "queue", arg: "x-queue-type", current: "quorum" }
 * ```
 *
 * @param message the error message
 * @returns which argument differs and its current value
 */
export function parseInequivalentArg(
  message: string,
): { of: "queue" | "exchange"; arg: string; current: string } | null {
  const m =
    /inequivalent arg '([^']+)' for (queue|exchange) .*? but current is (none|the value '([^']*)'|'([^']*)')/
      .exec(message);
  if (!m) return null;
  return { of: m[2] as "queue" | "exchange", arg: m[1], current: m[4] ?? m[5] ?? "none" };
}
