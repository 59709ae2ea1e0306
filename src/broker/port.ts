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
 * ```ts ignore
 * import type { QueueBinding } from "@celeriac/celeriac/protocol";
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
 * ```ts ignore
 * await broker.publishMany(batch, { signal: AbortSignal.timeout(5_000) });
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
   */
  reject(rejections: readonly Rejection[]): Promise<void>;
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
   * Renew the leases of unacknowledged deliveries, so that no restore sweep
   * (Celeriac's or kombu's) delivers them again while their consumer lives.
   * Does nothing where {@link Broker.visibilityTimeout} is `null`.
   */
  extend(deliveries: readonly Delivery[]): Promise<void>;
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
   * ```ts ignore
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

/**
 * Options of {@link Broker.subscribe}.
 *
 * @example Listening to remote-control broadcasts for ten seconds
 * ```ts
 * import type { Broker, SubscribeOptions } from "@celeriac/celeriac/protocol";
 * async function listen(broker: Broker): Promise<void> {
 *   const options: SubscribeOptions = {
 *     signal: AbortSignal.timeout(10_000),
 *     queue: "celeriac@host.celery.pidbox",
 *   };
 *   await broker.subscribe("celery.pidbox", (m) => console.log(m.headers), options);
 * }
 * ```
 */
export interface SubscribeOptions {
  /**
   * Stops the subscription. Aborted while it is being set up, the set-up
   * that completes later subscribes and consumes nothing (and undoes the
   * bindings it made).
   */
  signal: AbortSignal;
  /** The subscriber's own queue, where the transport needs one. */
  queue?: string;
  /**
   * Routing-key pattern to receive, for a topic exchange (`#`: every key).
   * Default: what a fanout delivers (the empty key). On Celery's direct
   * reply exchange `reply.celery.pidbox`, the key replies are sent with
   * (the client's oid): they arrive in `queue`, bound with it as kombu's
   * Mailbox binds `<oid>.reply.celery.pidbox`; the queue is removed when
   * `signal` aborts.
   */
  bindingKey?: string;
}

/**
 * A live subscription ({@link Broker.subscribe}), for a caller that must
 * not miss what reached the transport before a deadline (remote-control
 * replies after a stalled event loop).
 *
 * @example Collecting until a deadline, then what had arrived by then
 * ```ts ignore
 * const sub = await broker.subscribe(exchange, onMessage, { signal, queue, bindingKey });
 * await deadline;
 * if (sub) await sub.flush();
 * ```
 */
export interface Subscription {
  /**
   * Hand `onMessage` what reached the transport and was not handed over
   * yet (KV: one more read of the queue; RabbitMQ: a round trip on the
   * consuming channel, after which the deliveries sent before it were
   * read; Redis replies: a fence LPUSHed to the reply list, popped after
   * what was there before), then resolve. Resolves at once once the subscription ended.
   */
  flush(): Promise<void>;
}

/**
 * A revoked task id and when the worker may forget it.
 *
 * @example Remembering a revocation for three hours
 * ```ts
 * import type { Broker, RevokedEntry } from "@celeriac/celeriac/protocol";
 * async function remember(broker: Broker, id: string): Promise<void> {
 *   const entry: RevokedEntry = { id, expiresAt: new Date(Date.now() + 3 * 3600_000) };
 *   await broker.addRevoked([entry]);
 * }
 * ```
 */
export interface RevokedEntry {
  /** The task id. */
  id: string;
  /** When the entry expires. */
  expiresAt: Date;
}

/**
 * A request for tokens of one bucket (see {@link Broker.acquireTokens}).
 * A bucket starts full, refills at `rate` tokens per second up to
 * `capacity`, and grants whole tokens.
 *
 * @example Ten runs per second, no bursts (Celery's bucket)
 * ```ts
 * import type { TokenRequest } from "@celeriac/celeriac/protocol";
 * const request: TokenRequest = { key: "tasks.scrape", rate: 10, capacity: 1, count: 5 };
 * ```
 */
export interface TokenRequest {
  /** Bucket name (Celeriac uses the task name). */
  key: string;
  /** Tokens added per second. */
  rate: number;
  /** Most tokens the bucket holds (the largest burst). */
  capacity: number;
  /** Tokens wanted now. */
  count: number;
}

/**
 * The answer to a {@link TokenRequest}.
 *
 * @example Running what was granted, asking again later for the rest
 * ```ts
 * import type { TokenGrant } from "@celeriac/celeriac/protocol";
 * function plan(grant: TokenGrant, wanted: number): string {
 *   const rest = wanted - grant.granted;
 *   return rest ? `run ${grant.granted}, ask again in ${grant.retryAfterMs} ms` : "run all";
 * }
 * plan({ granted: 1, retryAfterMs: 100 }, 3); // "run 1, ask again in 100 ms"
 * ```
 */
export interface TokenGrant {
  /** Tokens granted, from 0 to the count asked for. */
  granted: number;
  /** Milliseconds until the next token is due; 0 when all were granted. */
  retryAfterMs: number;
}
