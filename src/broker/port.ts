/**
 * The broker port: what every transport (Redis, Deno KV, AMQP) provides.
 *
 * A broker knows nothing of tasks. It moves {@link Message}s between queues
 * and guarantees that every {@link Delivery} is settled exactly once: by
 * `ack`, by `reject` (parked in a dead-letter store an operator can list) or
 * by `requeue`. A delivery that is never settled (its consumer died) comes
 * back after the transport's visibility timeout.
 *
 * @module
 */

import type { Message } from "../protocol/message.ts";

/** Where to publish: an exchange (default `""`) and a routing key. */
export interface PublishTarget {
  /** Exchange name; `""` (the default exchange) routes by queue name. */
  exchange?: string;
  /** Routing key; on the default exchange, the queue name. */
  routingKey: string;
}

/** A message taken from a queue, to be settled exactly once. */
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

/** A message that a consumer refused, kept for an operator. */
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

/** Options of {@link Broker.take}. */
export interface TakeOptions {
  /** Take at most this many messages (the consumer's free slots). */
  max: number;
  /** Stop waiting: the call then resolves with `[]`. */
  signal?: AbortSignal;
}

/** A delivery to reject, with the reason it is parked. */
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

/** The transport contract. One conformance suite runs against every implementation. */
export interface Broker {
  /** Transport name: `redis`, `kv`, `amqp`. */
  readonly transport: string;
  /** Declare a queue (idempotent; some transports create nothing until publish). */
  declareQueue(queue: string): Promise<void>;
  /** Publish one message. Resolves once the broker has it. */
  publish(message: Message, target: PublishTarget): Promise<void>;
  /**
   * Take up to `max` messages from the queues (earlier queues and more urgent
   * priorities first). Waits until at least one is available; resolves with
   * `[]` when the signal aborts. Taking is atomic with recording the
   * delivery as unacknowledged.
   */
  take(queues: readonly string[], options: TakeOptions): Promise<Delivery[]>;
  /** Acknowledge deliveries: they are gone for good. */
  ack(deliveries: readonly Delivery[]): Promise<void>;
  /**
   * Refuse deliveries: they move to the parking store with a reason. A
   * delivery that was already acknowledged (a consumer that acks early and
   * finds the body unusable later) is parked all the same.
   */
  reject(rejections: readonly Rejection[]): Promise<void>;
  /** Put deliveries back at the front of their queue, marked redelivered. */
  requeue(deliveries: readonly Delivery[]): Promise<void>;
  /** Delete every message waiting in a queue; resolves with how many. */
  purge(queue: string): Promise<number>;
  /** How many messages wait in a queue (not counting unacknowledged ones). */
  queueDepth(queue: string): Promise<number>;
  /** List parked messages, oldest first. */
  listParked(options?: { limit?: number }): Promise<ParkedMessage[]>;
  /** Move parked messages back to their queues; resolves with how many. */
  requeueParked(options?: { limit?: number }): Promise<number>;
  /** Close connections. Unsettled deliveries come back after the visibility timeout. */
  close(): Promise<void>;
}
