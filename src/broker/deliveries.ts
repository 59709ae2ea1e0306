/**
 * What a consumer takes from a queue and how it settles it: the
 * {@link Delivery} and {@link TakeOptions} of `Broker.take`, the
 * {@link Rejection}s that park a delivery and the {@link ParkedMessage}s an
 * operator lists, {@link RequeueOptions} and the delivery-count header
 * that counts requeues by consumers that died.
 *
 * @module
 */

import type { Message } from "../protocol/message.ts";

/**
 * A message taken from a queue, to be settled exactly once. Its `body` may
 * be a view of a larger buffer (Redis: the small bodies of one take share
 * one): read it through its offset and length, and copy it
 * (`body.slice()`) before transferring its buffer.
 *
 * @example Handling a delivery
 * ```ts
 * import { type Broker, decodeTaskHeaders, type Delivery } from "@celeriac/celeriac/protocol";
 * async function handle(broker: Broker, delivery: Delivery): Promise<void> {
 *   const req = decodeTaskHeaders(delivery); // a Delivery is a Message
 *   const again = delivery.redelivered ? " (redelivered)" : "";
 *   console.log(`${req.task}[${req.id}] from ${delivery.queue}${again}`);
 *   await broker.ack([delivery]); // settle it exactly once
 * }
 * ```
 */
export interface Delivery extends Message {
  /** The queue it was taken from. */
  readonly queue: string;
  /** Transport-unique tag identifying this delivery. */
  readonly deliveryTag: string;
  /** True when the message was delivered before and not acknowledged. */
  readonly redelivered: boolean;
  /** Exchange it was published to. */
  readonly exchange: string;
  /** Routing key it was published with. */
  readonly routingKey: string;
}

/**
 * Header counting how many times a message was given back to its queue
 * because the consumer holding it died (restored after its visibility
 * timeout on Redis and KV; set by RabbitMQ itself on quorum queues). A
 * worker parks a message whose count reaches its `maxDeliveries` as a
 * poison message.
 *
 * @example
 * ```ts
 * import { DELIVERY_COUNT_HEADER } from "@celeriac/celeriac/protocol";
 * const deliveries = (headers: Record<string, unknown>) => Number(headers[DELIVERY_COUNT_HEADER] ?? 0);
 * deliveries({ "x-delivery-count": 2 }); // 2
 * ```
 */
export const DELIVERY_COUNT_HEADER = "x-delivery-count";

/**
 * Options of {@link Broker.requeue}.
 *
 * @example Requeueing the task a crashed Web Worker held, counted
 * ```ts
 * import { openBroker, type RequeueOptions } from "@celeriac/celeriac/protocol";
 * const broker = await openBroker("kv://:memory:");
 * const options: RequeueOptions = { consumerDied: true };
 * const taken = await broker.take(["celery"], { max: 1, signal: AbortSignal.timeout(100) });
 * await broker.requeue(taken, options);
 * await broker.close();
 * ```
 */
export interface RequeueOptions {
  /**
   * The consumer that held them died running them (a Web Worker that
   * crashed): count it in their {@link DELIVERY_COUNT_HEADER}, as a
   * redelivery after the visibility timeout is counted, so that a message
   * that kills every consumer is parked after `maxDeliveries`. Default false.
   */
  consumerDied?: boolean;
}

/**
 * A message that a consumer refused, kept for an operator.
 *
 * @example Listing parked messages
 * ```ts
 * import { openBroker, type ParkedMessage } from "@celeriac/celeriac/protocol";
 * const broker = await openBroker("kv://:memory:");
 * const parked: ParkedMessage[] = await broker.listParked({ limit: 20 });
 * for (const p of parked) {
 *   console.log(p.parkedAt.toISOString(), p.queue, p.taskName ?? "?", p.taskId ?? "?", p.reason);
 * }
 * await broker.close();
 * ```
 */
export interface ParkedMessage {
  /** Identifier within the parking store. */
  readonly id: string;
  /** Why it was parked (e.g. `unregistered task "x"`). */
  readonly reason: string;
  /** The queue it came from. */
  readonly queue: string;
  /** The task id, when the message carried one. */
  readonly taskId: string | null;
  /** The task name, when the message carried one. */
  readonly taskName: string | null;
  /** When it was parked. */
  readonly parkedAt: Date;
}

/**
 * Options of {@link Broker.take}.
 *
 * @example Taking a batch, giving up after a while
 * ```ts
 * import { openBroker, type TakeOptions } from "@celeriac/celeriac/protocol";
 * const broker = await openBroker("kv://:memory:");
 * const options: TakeOptions = { max: 8, signal: AbortSignal.timeout(100) };
 * const deliveries = await broker.take(["celery"], options); // [] here: the queue is empty
 * await broker.ack(deliveries);
 * await broker.close();
 * ```
 */
export interface TakeOptions {
  /** Take at most this many messages (the consumer's free slots). */
  max: number;
  /** Stop waiting: the call then resolves with `[]`. */
  signal?: AbortSignal;
}

/**
 * Check the arguments of a {@link Broker.take}, as the Redis, Redis Cluster
 * and RabbitMQ brokers do before anything else (a `max` that is not whole
 * is rounded down by the broker afterwards).
 *
 * @throws {TypeError} when `queues` is empty
 * @throws {RangeError} when `options.max` is not >= 1 (NaN included)
 *
 * @example
 * ```ts
 * import { checkTakeArguments } from "./deliveries.ts";
 * checkTakeArguments(["celery"], { max: 4 }); // fine
 * try {
 *   checkTakeArguments(["celery"], { max: 0 });
 * } catch (err) {
 *   console.log((err as RangeError).message); // "take() needs max >= 1"
 * }
 * ```
 */
export function checkTakeArguments(queues: readonly string[], options: TakeOptions): void {
  if (queues.length === 0) throw new TypeError("take() needs at least one queue");
  if (!(options.max >= 1)) throw new RangeError("take() needs max >= 1");
}

/**
 * A delivery to reject, with the reason it is parked.
 *
 * @example Parking messages of unknown tasks
 * ```ts
 * import type { Broker, Delivery, Rejection } from "@celeriac/celeriac/protocol";
 * async function refuseUnknown(broker: Broker, deliveries: Delivery[], known: Set<string>) {
 *   const rejections: Rejection[] = deliveries
 *     .filter((d) => !known.has(String(d.headers.task)))
 *     .map((d) => ({
 *       delivery: d,
 *       reason: `unregistered task "${d.headers.task}"`,
 *       taskId: String(d.headers.id),
 *       taskName: String(d.headers.task),
 *     }));
 *   await broker.reject(rejections); // operators see them with listParked()
 * }
 * ```
 */
export interface Rejection {
  /** The delivery. */
  delivery: Delivery;
  /** Why it is refused; shown to operators. */
  reason: string;
  /** Task id, if known. */
  taskId?: string | null;
  /** Task name, if known. */
  taskName?: string | null;
}
