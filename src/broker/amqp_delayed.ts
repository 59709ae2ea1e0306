/**
 * RabbitMQ native delayed delivery, laid out as Celery 5.5 / kombu lay it
 * out (`kombu/transport/native_delayed_delivery.py`), so that Python and
 * Celeriac clients and workers share one set of delay queues:
 *
 * - 28 levels, 27 down to 0. Level `L` is a topic exchange
 *   `celery_delayed_L` and a durable queue of the same name whose messages
 *   live 2^L seconds (`x-message-ttl`), then are dead-lettered to level
 *   `L-1` (level 0: to the topic exchange `celery_delayed_delivery`).
 *   The queues refuse publishes when full (`x-overflow: reject-publish`);
 *   as quorum queues (Celery's default `broker_native_delayed_delivery_queue_type`)
 *   they dead-letter `at-least-once`.
 * - A delayed message is published to `celery_delayed_27` with a routing
 *   key of the delay in whole seconds as 28 binary digits, each followed by
 *   a dot, then the task's routing key: `0.0.….1.0.1.celery` for 5 s.
 * - Level `L` looks at digit `27-L` (its bit of weight 2^L): the queue
 *   `celery_delayed_L` is bound to its exchange with `*.`×(27-L) `1.#`
 *   (wait 2^L s there), and the exchange `celery_delayed_{L-1}` (or, for
 *   level 0, `celery_delayed_delivery`) is bound to it with `*.`×(27-L)
 *   `0.#` (skip this level).
 * - A worker binds each task queue's exchange to `celery_delayed_delivery`
 *   with `#.<routing key>`, and the queue to its exchange with the same
 *   key. Only topic (and fanout) exchanges can match those keys: with a
 *   direct exchange the delay cannot reach the queue, and Celery then
 *   falls back to holding the ETA task in the worker.
 *
 * Pure data and arithmetic; `amqp_declare.ts` declares it.
 *
 * @module
 */

import type { QueueDeclaration } from "./amqp_topology.ts";

/**
 * Levels of delay queues (the delay is at most 2^28 - 1 seconds, about 8.5 years).
 *
 * @example
 * ```ts
 * import { DELAY_LEVELS } from "./amqp_delayed.ts";
 * DELAY_LEVELS; // 28
 * ```
 */
export const DELAY_LEVELS = 28;

/**
 * The exchange a delayed message comes out of once its delay is over.
 *
 * @example
 * ```ts
 * import { DELAYED_DELIVERY_EXCHANGE } from "./amqp_delayed.ts";
 * DELAYED_DELIVERY_EXCHANGE; // "celery_delayed_delivery"
 * ```
 */
export const DELAYED_DELIVERY_EXCHANGE = "celery_delayed_delivery";

/**
 * The name of one level's exchange and queue.
 *
 * @example
 * ```ts
 * import { delayLevelName } from "./amqp_delayed.ts";
 * delayLevelName(27); // "celery_delayed_27"
 * ```
 *
 * @param level 0 to 27
 * @returns the name
 */
export function delayLevelName(level: number): string {
  if (!Number.isInteger(level) || level < 0 || level >= DELAY_LEVELS) {
    throw new RangeError(`Delay level ${level} is out of range: use 0 to ${DELAY_LEVELS - 1}`);
  }
  return `celery_delayed_${level}`;
}

/**
 * The exchange a delayed message is published to.
 *
 * @example
 * ```ts
 * import { DELAYED_ENTRY_EXCHANGE } from "./amqp_delayed.ts";
 * DELAYED_ENTRY_EXCHANGE; // "celery_delayed_27"
 * ```
 */
export const DELAYED_ENTRY_EXCHANGE = `celery_delayed_${DELAY_LEVELS - 1}`;

/**
 * The routing key that delays a message by `seconds` (whole seconds, as
 * Celery truncates them) on its way to `routingKey`.
 *
 * @example
 * ```ts
 * import { delayedRoutingKey } from "./amqp_delayed.ts";
 * delayedRoutingKey(5, "celery").endsWith("0.1.0.1.celery"); // true
 * ```
 *
 * @param seconds the delay, at least 1
 * @param routingKey the task's routing key, not empty
 * @returns the key to publish to {@link DELAYED_ENTRY_EXCHANGE} with
 * @throws {RangeError} for a delay under 1 s or of 2^28 s or more
 * @throws {TypeError} for an empty routing key
 */
export function delayedRoutingKey(seconds: number, routingKey: string): string {
  const whole = Math.trunc(seconds);
  if (!(whole >= 1) || whole >= 2 ** DELAY_LEVELS) {
    throw new RangeError(
      `A native delay must be 1 s to ${2 ** DELAY_LEVELS - 1} s, not ${seconds}`,
    );
  }
  if (!routingKey) throw new TypeError("A delayed message needs a non-empty routing key");
  const bits = whole.toString(2).padStart(DELAY_LEVELS, "0");
  return `${[...bits].join(".")}.${routingKey}`;
}

/**
 * One level of the delay topology.
 *
 * @example
 * ```ts
 * import { delayLevels } from "./amqp_delayed.ts";
 * const [top] = delayLevels("quorum");
 * top.queue.arguments["x-message-ttl"]; // 134217728000
 * ```
 */
export interface DelayLevel {
  /** 27 down to 0. */
  level: number;
  /** Its topic exchange (same name as the queue). */
  exchange: string;
  /** Its queue. */
  queue: QueueDeclaration;
  /** The key binding the queue to the exchange (this level's digit is 1). */
  waitKey: string;
  /** Where a message whose digit is 0 goes next: the next level's exchange, or the delivery exchange. */
  next: string;
  /** The key binding `next` to this level's exchange (this level's digit is 0). */
  skipKey: string;
}

/**
 * The 28 levels, from 27 down to 0, with Celery's arguments.
 *
 * @example
 * ```ts
 * import { delayLevels } from "./amqp_delayed.ts";
 * const levels = delayLevels("quorum");
 * levels[27].waitKey.startsWith("*.*."); // true
 * levels[27].next; // "celery_delayed_delivery"
 * ```
 *
 * @param queueType `quorum` (Celery's default) or `classic`
 * @returns the levels
 */
export function delayLevels(queueType: "classic" | "quorum"): DelayLevel[] {
  const out: DelayLevel[] = [];
  for (let level = DELAY_LEVELS - 1; level >= 0; level--) {
    const name = delayLevelName(level);
    const next = level > 0 ? delayLevelName(level - 1) : DELAYED_DELIVERY_EXCHANGE;
    const prefix = "*.".repeat(DELAY_LEVELS - 1 - level);
    const args: Record<string, unknown> = {
      "x-queue-type": queueType,
      "x-overflow": "reject-publish",
      "x-message-ttl": 2 ** level * 1000,
      "x-dead-letter-exchange": next,
    };
    if (queueType === "quorum") args["x-dead-letter-strategy"] = "at-least-once";
    out.push({
      level,
      exchange: name,
      queue: { name, durable: true, autoDelete: false, exclusive: false, arguments: args },
      waitKey: `${prefix}1.#`,
      next,
      skipKey: `${prefix}0.#`,
    });
  }
  return out;
}

/**
 * The key a task queue and its exchange are bound with to receive delayed
 * messages: `#.<routing key>` (a key already starting with `#` as it is).
 *
 * @example
 * ```ts
 * import { delayedBindingKey } from "./amqp_delayed.ts";
 * delayedBindingKey("celery"); // "#.celery"
 * ```
 *
 * @param routingKey the queue's binding key
 * @returns the binding key
 */
export function delayedBindingKey(routingKey: string): string {
  return routingKey.startsWith("#") ? routingKey : `#.${routingKey}`;
}
