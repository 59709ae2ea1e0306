/**
 * The broker port: what every transport (Redis, Deno KV, AMQP) provides.
 *
 * A broker knows nothing of tasks. It moves {@link Message}s between queues
 * and guarantees that every {@link Delivery} is settled exactly once: by
 * `ack`, by `reject` (parked in a dead-letter store an operator can list) or
 * by `requeue`. A delivery that is never settled (its consumer died) comes
 * back after the transport's visibility timeout.
 *
 * This file holds the {@link Broker} interface and what publishing takes;
 * the types of its other calls are in deliveries.ts (take and settle),
 * subscriptions.ts (broadcasts) and shared_state.ts (revoked ids, rate-limit
 * tokens), re-exported here.
 *
 * @module
 */

import type { Message } from "../protocol/message.ts";
import type {
  Delivery,
  ParkedMessage,
  Rejection,
  RequeueOptions,
  TakeOptions,
} from "./deliveries.ts";
import type { RevokedEntry, TokenGrant, TokenRequest } from "./shared_state.ts";
import type { SubscribeOptions, Subscription } from "./subscriptions.ts";

export { DELIVERY_COUNT_HEADER } from "./deliveries.ts";
export type { Delivery, ParkedMessage, Rejection, RequeueOptions, TakeOptions };
export type { RevokedEntry, SubscribeOptions, Subscription, TokenGrant, TokenRequest };

/**
 * Where to publish: an exchange (default `""`) and a routing key.
 *
 * @example Publishing to a named queue
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { encodeTaskMessage, type PublishTarget } from "@celeriac/celeriac/protocol";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const message = encodeTaskMessage({
 *   task: "reports.build", id: crypto.randomUUID(), args: [2024], kwargs: {},
 *   now: new Date(), origin: "gen1@host", replyTo: app.oid,
 * });
 * const target: PublishTarget = { exchange: "", routingKey: "reports" }; // the queue "reports"
 * await app.publish(message, target);
 * await app.close();
 * ```
 */
export interface PublishTarget {
  /** Exchange name; `""` (the default exchange) routes by queue name. */
  exchange?: string;
  /** Routing key; on the default exchange, the queue name. */
  routingKey: string;
}

/**
 * A task queue's binding to a named exchange, as a Celery app's
 * `task_queues` entry `Queue(queue, Exchange(exchange, type), routing_key)`
 * or `celery control add_consumer <queue> <exchange> <type> <key>` makes it:
 * messages published to the exchange with a matching routing key (the key
 * itself on a direct exchange, a pattern with `*` and `#` words on a topic
 * one) land in the queue.
 *
 * @example
 * ```ts
 * import { openBroker, type QueueBinding } from "@celeriac/celeriac/protocol";
 * const broker = await openBroker("amqp://guest:guest@127.0.0.1:5672//");
 * const binding: QueueBinding = { exchange: "events", type: "topic", routingKey: "order.*" };
 * await broker.bindQueue?.("orders", binding);
 * ```
 */
export interface QueueBinding {
  /** The exchange name (not `""`). */
  exchange: string;
  /** The exchange's type. */
  type: "direct" | "topic";
  /** The binding key. */
  routingKey: string;
}

/**
 * Options of {@link Broker.publishMany}.
 *
 * @example
 * ```ts
 * import { encodeTaskMessage, openBroker, type Publication } from "@celeriac/celeriac/protocol";
 * const broker = await openBroker("redis://127.0.0.1:6379/0");
 * const batch: Publication[] = [[1, 2], [3, 4]].map((args) => ({
 *   message: encodeTaskMessage({
 *     task: "tasks.add", id: crypto.randomUUID(), args, kwargs: {},
 *     now: new Date(), origin: "gen1@example", replyTo: crypto.randomUUID(),
 *   }),
 *   target: { routingKey: "celery" },
 * }));
 * await broker.publishMany?.(batch, { signal: AbortSignal.timeout(5_000) });
 * ```
 */
export interface PublishManyOptions {
  /**
   * Stops the batch: what is not written yet is not sent. Default none.
   * Redis writes all its LPUSHes at once, so it stops only before them.
   */
  signal?: AbortSignal;
}

/**
 * One message of a batch and where to publish it, for {@link Broker.publishMany}.
 *
 * @example
 * ```ts
 * import { encodeTaskMessage, type Publication } from "@celeriac/celeriac/protocol";
 * const message = encodeTaskMessage({
 *   task: "tasks.add",
 *   id: crypto.randomUUID(),
 *   args: [2, 3],
 *   kwargs: {},
 *   now: new Date(),
 *   origin: "gen1@example",
 *   replyTo: crypto.randomUUID(),
 * });
 * const item: Publication = { message, target: { routingKey: "celery" } };
 * ```
 */
export interface Publication {
  /** The encoded message. */
  message: Message;
  /** Exchange and routing key. */
  target: PublishTarget;
}

/**
 * The transport contract. One conformance suite runs against every implementation.
 *
 * @example Draining a queue
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { type Broker } from "@celeriac/celeriac/protocol";
 * async function drain(broker: Broker, queue: string): Promise<number> {
 *   let drained = 0;
 *   while (await broker.queueDepth(queue) > 0) {
 *     const deliveries = await broker.take([queue], { max: 100, signal: AbortSignal.timeout(1000) });
 *     await broker.ack(deliveries);
 *     drained += deliveries.length;
 *   }
 *   return drained;
 * }
 * const app = new Celery({ broker: "kv://:memory:" });
 * await app.sendTask("tasks.add", [2, 3]);
 * await drain(await app.broker(), "celery"); // 1
 * await app.close();
 * ```
 */
export interface Broker {
  /** Transport name: `redis`, `kv`, `amqp`. */
  readonly transport: string;
  /** Declare a queue (idempotent; some transports create nothing until publish). */
  declareQueue(queue: string): Promise<void>;
  /**
   * Declare a task queue and bind it to a named exchange (declared, durable,
   * as kombu declares it), as a Celery worker does for its `task_queues` and
   * for `add_consumer` with an exchange. Redis and RabbitMQ only: the KV
   * broker and Redis Cluster route by queue name and have no exchanges.
   */
  bindQueue?(queue: string, binding: QueueBinding): Promise<void>;
  /**
   * Stop waiting on a queue the worker no longer consumes (`cancel_consumer`):
   * a wait still under way on it ends, and what it claimed goes back to the
   * queue, for any worker. Optional: only Redis waits outside a take.
   */
  releaseQueue?(queue: string): Promise<void>;
  /** Publish one message. Resolves once the broker has it. */
  publish(message: Message, target: PublishTarget): Promise<void>;
  /**
   * Publish many messages at once (Redis: variadic LPUSHes of up to 1,000
   * per list, pipelined; RabbitMQ: every message written with the publisher
   * confirms in flight together).
   * Resolves once the broker has them all. When it stops part way (the
   * connection drops, the signal aborts once some were written) it rejects
   * with a `BatchPublishError` telling what became of each message; when
   * nothing went out, with the cause itself. Optional: without it, callers
   * publish each message concurrently.
   */
  publishMany?(batch: readonly Publication[], options?: PublishManyOptions): Promise<void>;
  /**
   * Take up to `max` messages from the queues (earlier queues and more urgent
   * priorities first). Waits until at least one is available; resolves with
   * `[]` when the signal aborts or the broker closes meanwhile. Taking is
   * atomic with recording the delivery as unacknowledged. Rejects with a
   * `BrokerConnectionError` that is not `transient` when the broker was
   * already closed (a loop taking again after `[]` ends there).
   */
  take(queues: readonly string[], options: TakeOptions): Promise<Delivery[]>;
  /** Acknowledge deliveries: they are gone for good. */
  ack(deliveries: readonly Delivery[]): Promise<void>;
  /**
   * Refuse deliveries: they move to the parking store with a reason. A
   * delivery that was already acknowledged (a consumer that acks early and
   * finds the body unusable later) is parked all the same.
   *
   * Resolves with the rejections parked (the same objects): one the broker
   * can no longer settle (its RabbitMQ connection is gone; on Redis, an
   * delivery handed out early that its take did not record) is left out, as it comes back
   * by itself and is judged again. A worker announces (logs, counts, sends
   * `task-rejected` for) only those. Resolving with nothing (`undefined`, as
   * a broker written before this returned) means all of them were parked.
   */
  reject(rejections: readonly Rejection[]): Promise<readonly Rejection[] | void>;
  /**
   * Put deliveries back at the front of their queue, marked redelivered.
   * Given in the order they were received, they end up at the head of the
   * queue in that same order: the next take gets them in their original order
   * (a RabbitMQ quorum queue returns them behind the waiting messages, in order).
   * With `options.consumerDied` they count as given back by a consumer that
   * died holding them ({@link DELIVERY_COUNT_HEADER}, on Redis and KV; a
   * RabbitMQ quorum queue counts every requeue itself).
   */
  requeue(deliveries: readonly Delivery[], options?: RequeueOptions): Promise<void>;
  /**
   * Delete every message waiting in a queue; resolves with how many. Rejects
   * with a TypeError for an empty queue name.
   */
  purge(queue: string): Promise<number>;
  /**
   * How many messages wait in a queue (not counting unacknowledged ones).
   * Rejects with a TypeError for an empty queue name.
   */
  queueDepth(queue: string): Promise<number>;
  /** List parked messages, oldest first. */
  listParked(options?: { limit?: number }): Promise<ParkedMessage[]>;
  /** How many messages are parked (all of them, however many {@link listParked} returns). */
  countParked(): Promise<number>;
  /** Move parked messages back to their queues; resolves with how many. */
  requeueParked(options?: { limit?: number }): Promise<number>;
  /**
   * Milliseconds an unacknowledged delivery stays with its consumer before
   * the transport delivers it again, unless {@link Broker.extend} renews it
   * (Redis, KV); `null` when the broker keeps unacknowledged deliveries for
   * as long as the consumer's connection lives (AMQP).
   */
  readonly visibilityTimeout: number | null;
  /**
   * True when the transport checked every delivery's headers against the
   * nesting and size limits as it decoded them (Redis: `decodeEnvelope`
   * refuses them there), so that the worker does not walk them again.
   */
  readonly headersChecked?: boolean;
  /**
   * The largest message the broker stores, in bytes (body and envelope, as
   * the broker counts them): `publish` and `broadcast` refuse a bigger one
   * with a RangeError. `undefined` (Redis, RabbitMQ) means no limit of the
   * broker's own; the KV broker says 60,000 (`KV_MAX_MESSAGE_BYTES`). A worker
   * splits its `task.multi` event batches to fit.
   */
  readonly maxMessageBytes?: number;
  /**
   * Renew the leases of unacknowledged deliveries, so that no restore sweep
   * (Celeriac's or kombu's) delivers them again while their consumer lives.
   * Does nothing where {@link Broker.visibilityTimeout} is `null`.
   * Resolves with the deliveries whose lease was already gone: settled, or
   * restored to their queue by a sweep after their lease ran out (to be
   * delivered again, so their consumer drops a copy it has not started).
   */
  extend(deliveries: readonly Delivery[]): Promise<Delivery[]>;
  /**
   * Publish a message to a fanout exchange (remote control, events): every
   * subscriber receives it; nothing is kept for subscribers that come later.
   * `routingKey` (default `""`) matters on topic exchanges: Celery's events
   * go to `celeryev` with the event type as key (`task.multi`,
   * `worker.heartbeat`).
   */
  broadcast(exchange: string, message: Message, routingKey?: string): Promise<void>;
  /**
   * Receive what is broadcast on a fanout exchange until `signal` aborts.
   * Resolves once subscribed, with a {@link Subscription} where the
   * transport can flush what reached it (KV, RabbitMQ; Redis: replies). `queue` names the
   * subscriber's own queue where the transport needs one (AMQP: Celery's
   * `<nodename>.celery.pidbox`).
   */
  subscribe(
    exchange: string,
    onMessage: (message: Message) => void,
    options: SubscribeOptions,
  ): Promise<Subscription | void>;
  /**
   * Remember revoked task ids until they expire, so that a worker that
   * starts later still skips them.
   */
  addRevoked(entries: readonly RevokedEntry[]): Promise<void>;
  /** The remembered revoked ids that have not expired. */
  listRevoked(): Promise<RevokedEntry[]>;
  /**
   * Take tokens from token buckets kept in the broker, atomically for all
   * requests of one call, so that a rate limit holds across every worker
   * that shares the broker. Optional: a worker whose broker lacks it
   * limits rates per worker, with buckets in its own memory.
   *
   * @example Asking for three runs of a task limited to 10 per second
   * ```ts
   * import { openBroker } from "@celeriac/celeriac/protocol";
   * const broker = await openBroker("redis://127.0.0.1:6379/0");
   * const [grant] = await broker.acquireTokens!([
   *   { key: "tasks.scrape", rate: 10, capacity: 1, count: 3 },
   * ]);
   * // grant.granted: how many may run now; grant.retryAfterMs: when to ask again for the rest
   * ```
   */
  acquireTokens?(requests: readonly TokenRequest[]): Promise<TokenGrant[]>;
  /** Close connections. Unsettled deliveries come back after the visibility timeout. */
  close(): Promise<void>;
}
