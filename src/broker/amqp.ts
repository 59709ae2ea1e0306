/**
 * The AMQP 0-9-1 (RabbitMQ) transport, wire-compatible with Celery 5.2 on
 * py-amqp: the same exchanges and queues with the same flags and arguments
 * (`amqp_topology.ts`), tasks published to the default exchange with the
 * queue as routing key, headers typed as py-amqp types them
 * (`amqp_table.ts`), publisher confirms, manual acknowledgements.
 *
 * Design decisions (each part's file says more):
 *
 * - **Consumers, bounded by per-consumer prefetch; no hoarding; batched
 *   acknowledgements** (`amqp_take.ts`, `amqp_intake.ts`).
 * - **Publisher confirms, delayed delivery** (`amqp_publish.ts`,
 *   `amqp_delayed.ts`).
 * - **Parking** in the durable queue `celeriac.parked`, with a note in the
 *   `x-celeriac-parked` header (`amqp_parked.ts`).
 * - **Revoked ids** in the stream queue `celeriac.revoked` (`amqp_revoked.ts`).
 * - **Reconnection.** One {@link AmqpConnection} (a state machine:
 *   connecting / open / lost → backoff → connecting / closed) per broker.
 *   Channels and declarations belong to one connection; after a reconnect
 *   they are opened and declared again on first use, a blocked `take()`
 *   carries on with the new connection, subscriptions re-declare their
 *   queue and consume again, and `publish()` waits for the connection
 *   (at most `publishTimeout`) and publishes again when a confirm was lost
 *   with the old one (at-least-once). Deliveries of a dead connection are
 *   redelivered by RabbitMQ, so their settlements are dropped.
 * - **No visibility timeout**: RabbitMQ keeps an unacknowledged delivery as
 *   long as its channel lives, so `visibilityTimeout` is `null` and
 *   `extend()` does nothing.
 *
 * Its options, and how the URL's query parameters win over them, are in
 * `amqp_options.ts`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Message } from "../protocol/message.ts";
import { HeldChannel } from "./amqp_channel.ts";
import { AmqpConnection, isChannelError } from "./amqp_connection.ts";
import { CONSUME_RETRY_DELAY_MS, consumeAcrossReconnects } from "./amqp_consume.ts";
import { Declarations } from "./amqp_declare.ts";
import { ParkedScans, parkRejections } from "./amqp_parked.ts";
import { AmqpPublisher } from "./amqp_publish.ts";
import { addRevoked, listRevoked } from "./amqp_revoked.ts";
import { AmqpTaker } from "./amqp_take.ts";
import { type AmqpBrokerOptions, declarationOptions, publishWaitMs } from "./amqp_options.ts";
import { brokerClosed, checkQueueName } from "./errors.ts";
import { exchangeDeclaration, subscriberQueueDeclaration } from "./amqp_topology.ts";
import type {
  Broker,
  Delivery,
  ParkedMessage,
  Publication,
  PublishManyOptions,
  PublishTarget,
  QueueBinding,
  Rejection,
  RevokedEntry,
  SubscribeOptions,
  Subscription,
  TakeOptions,
} from "./port.ts";
import { checkTakeArguments } from "./deliveries.ts";
import { unlessAborted } from "./sleep.ts";

const log = getLogger(["celeriac", "broker", "amqp"]);

/** A subscription's name for its own queue when the subscriber gives none. */
function defaultSubscriberQueue(exchange: string): string {
  const id = crypto.randomUUID();
  return exchangeDeclaration(exchange).type === "topic" ? `${exchange}.${id}` : `${id}.${exchange}`;
}

/**
 * A Celery-compatible RabbitMQ broker.
 *
 * @example
 * ```ts
 * import { openAmqpBroker } from "@celeriac/celeriac/transports";
 * const broker = await openAmqpBroker("amqp://guest:guest@127.0.0.1:5672//");
 * const [d] = await broker.take(["celery"], { max: 1, signal: AbortSignal.timeout(1000) });
 * if (d) await broker.ack([d]);
 * await broker.close();
 * ```
 */
export class AmqpBroker implements Broker {
  /** Always `amqp`. */
  readonly transport = "amqp";
  /** `null`: RabbitMQ keeps unacknowledged deliveries while their channel lives. */
  readonly visibilityTimeout: number | null = null;
  readonly #conn: AmqpConnection;
  readonly #declarations: Declarations;
  readonly #publisher: AmqpPublisher;
  readonly #taker: AmqpTaker;
  readonly #parked: ParkedScans;
  readonly #subscriptions = new Set<Promise<void>>();
  readonly #closing = new AbortController();

  /**
   * Use {@link openAmqpBroker}.
   *
   * @param rawUrl the broker URL
   * @param options transport options
   */
  constructor(rawUrl: string, options: AmqpBrokerOptions = {}) {
    this.#conn = new AmqpConnection(rawUrl, {
      name: options.connectionName ?? "celeriac-broker",
      backoff: options.backoff,
    });
    this.#declarations = new Declarations(declarationOptions(this.#conn.url, options));
    this.#publisher = new AmqpPublisher({
      connection: this.#conn,
      declarations: this.#declarations,
      publishTimeoutMs: publishWaitMs(this.#conn.url, options),
      closing: this.#closing.signal,
    });
    this.#taker = new AmqpTaker(this.#conn, this.#declarations, this.#closing.signal);
    this.#parked = new ParkedScans(this.#publisher, this.#declarations, {
      waitMs: (options.parkedScanWait ?? 30) * 1000,
    });
  }

  /** The connection's state (`open`, `lost`, ...). */
  get connectionState(): string {
    return this.#conn.state;
  }

  /**
   * Connect now.
   *
   * @param signal destroys the socket of a connect under way
   * @throws {BrokerConnectionError} when RabbitMQ cannot be reached
   */
  connect(signal?: AbortSignal): Promise<void> {
    return this.#conn.start(signal);
  }

  /** Declare a task queue as Celery does: exchange `<queue>` (direct, durable) bound with key `<queue>`. */
  async declareQueue(queue: string): Promise<void> {
    await this.#publisher.withSession((s) => this.#declarations.taskQueue(s, queue));
  }

  /**
   * Declare a task queue and bind it to a named exchange, declared as kombu
   * declares an `Exchange` (durable, not auto-deleted) of the binding's type.
   */
  async bindQueue(queue: string, binding: QueueBinding): Promise<void> {
    await this.#publisher.withSession((s) => this.#declarations.binding(s, queue, binding));
  }

  /**
   * Publish one message; resolves once RabbitMQ confirmed it. To the
   * default exchange, the routing key's queue is declared first (Celery's
   * `task_create_missing_queues`); to Celery's own exchanges
   * (`reply.celery.pidbox`, ...), the exchange is declared as Celery does;
   * to an exchange that does not exist, the message is refused, as RabbitMQ
   * refuses it (kombu raises its `NOT_FOUND` to the caller).
   *
   * @throws {BrokerConnectionError} when the connection stays lost longer than `publishTimeout`
   * @throws {ExchangeNotFoundError} when the target's exchange does not exist (nothing sent)
   */
  publish(message: Message, target: PublishTarget): Promise<void> {
    return this.#publisher.publish(message, target);
  }

  /**
   * Publish many messages with their publisher confirms in flight together
   * (each target routed once, as `publish` does); resolves once RabbitMQ
   * confirmed them all. The messages not confirmed when the connection
   * dies are published again on the next one (within `publishTimeout`).
   * Rejects with a `BatchPublishError` (what RabbitMQ confirmed, what it
   * may have taken) when it fails after writing some, with the cause itself
   * when nothing went out (an `ExchangeNotFoundError` for a target whose
   * exchange does not exist, found before anything is written).
   */
  publishMany(batch: readonly Publication[], options?: PublishManyOptions): Promise<void> {
    return this.#publisher.publishMany(batch, options);
  }

  /**
   * Take up to `max` messages, earlier queues first among those buffered,
   * waiting while there are none; RabbitMQ never gives this process more
   * unacknowledged messages than were handed out plus `max` per queue. A
   * lost connection is waited out.
   *
   * @throws {BrokerConnectionError} (not transient) when the broker was closed
   */
  async take(queues: readonly string[], options: TakeOptions): Promise<Delivery[]> {
    checkTakeArguments(queues, options);
    if (this.#closing.signal.aborted) throw brokerClosed(this.#conn.safeUrl, "openAmqpBroker()");
    const max = Math.floor(options.max);
    const stops = options.signal ? [options.signal, this.#closing.signal] : [this.#closing.signal];
    return await this.#taker.take(queues, max, stops);
  }

  /** Acknowledge deliveries (dropped for deliveries whose connection is gone: RabbitMQ redelivers them). */
  ack(deliveries: readonly Delivery[]): Promise<void> {
    this.#taker.settle(deliveries, "ack");
    return Promise.resolve();
  }

  /**
   * Put deliveries back in their queues (`basic.nack` with requeue; RabbitMQ
   * marks them redelivered). Deliveries of the consumers' channel go back
   * with the consumers cancelled and, after them, whatever the consumers
   * had buffered, so that they are back in front of it.
   */
  requeue(deliveries: readonly Delivery[]): Promise<void> {
    return this.#taker.requeue(deliveries);
  }

  /**
   * Park deliveries in `celeriac.parked` with their reasons, then
   * acknowledge them. A delivery whose connection is gone is not parked: it
   * comes back by itself and will be judged again. One whose connection
   * closed while its park was being written comes back too: its copy is
   * not written again on the next connection, it is not said to be parked
   * (it is judged again when it comes back), and, when its copy was
   * written before the loss, a warning names it (a requeue of that copy
   * may run its task a second time).
   *
   * @returns the rejections parked and acknowledged (those whose connection was still there)
   */
  async reject(rejections: readonly Rejection[]): Promise<Rejection[]> {
    const held = (d: Delivery) => this.#taker.parkable(d);
    const toPark = rejections.filter((r) => held(r.delivery));
    if (toPark.length === 0) return toPark;
    const written = await parkRejections(this.#publisher, this.#declarations, toPark, held);
    const parked = toPark.filter((r) => held(r.delivery));
    const stray = written.filter((r) => !parked.includes(r));
    if (stray.length > 0) {
      log.warn(
        "The connection of {n} message(s) closed while they were being parked (task ids {ids}): " +
          "RabbitMQ delivers them again, and their copies stay in {queue} (unless the loss took " +
          "the copy too); `parked --requeue` puts those copies back too, so check first whether " +
          "the tasks ran meanwhile",
        {
          n: stray.length,
          ids: stray.map((r) => r.taskId ?? "?").join(", "),
          queue: "celeriac.parked",
        },
      );
    }
    this.#taker.settle(parked.map((r) => r.delivery), "ack");
    return parked;
  }

  #isMissing(err: unknown): boolean {
    return isChannelError(err, 404);
  }

  /**
   * Delete every waiting message of a queue; 0 for a queue that does not exist.
   *
   * @throws {TypeError} for an empty queue name (RabbitMQ would purge the channel's last declared queue)
   */
  async purge(queue: string): Promise<number> {
    checkQueueName(queue, "purge()");
    return await this.#onQueue(async (ch) => (await ch.purgeQueue(queue)).messageCount);
  }

  /**
   * Count ready messages of a queue (a passive declare); 0 for a queue that does not exist.
   *
   * @throws {TypeError} for an empty queue name
   */
  async queueDepth(queue: string): Promise<number> {
    checkQueueName(queue, "queueDepth()");
    return await this.#onQueue(async (ch) => (await ch.checkQueue(queue)).messageCount);
  }

  /**
   * Run an operation on a queue that may not exist, on a channel of its own:
   * RabbitMQ answers a missing queue by closing the channel, which would
   * fail every other call in flight on a shared one (the dashboard asks the
   * depths of several queues at once). A missing queue counts 0.
   */
  async #onQueue(fn: (ch: HeldChannel["channel"]) => Promise<number>): Promise<number> {
    return await this.#publisher.withSession(async (session) => {
      const held = await HeldChannel.open(session);
      try {
        return await fn(held.channel);
      } catch (err) {
        if (this.#isMissing(err)) return 0;
        throw err;
      } finally {
        await held.close();
      }
    });
  }

  /**
   * Run `call` unless this broker was closed; a failure once it is closing (the connection
   * closed under a wait: amqplib's "Connection closing") rejects as the broker closed.
   */
  async #whileOpen<T>(call: () => Promise<T>): Promise<T> {
    const closed = (cause?: unknown) => brokerClosed(this.#conn.safeUrl, "openAmqpBroker()", cause);
    if (this.#closing.signal.aborted) throw closed();
    try {
      return await call();
    } catch (err) {
      if (this.#closing.signal.aborted) throw closed(err);
      throw err;
    }
  }

  /** List parked messages, oldest first (read without removing them; a message parked twice once). */
  listParked(options: { limit?: number } = {}): Promise<ParkedMessage[]> {
    return this.#whileOpen(() => this.#parked.list(options.limit ?? 100));
  }

  /**
   * How many copies are parked (takes no lock; those this broker's listing or requeue holds
   * meanwhile counted, those another process's holds not).
   */
  countParked(): Promise<number> {
    return this.#whileOpen(() => this.#parked.count());
  }

  /**
   * Move parked messages back to their queues, marked redelivered (a
   * second copy of a message parked twice dropped); resolves with how many.
   * Listings and requeues from all processes run one at a time (each holds
   * the exclusive queue `celeriac.parked.scan-lock`), so two requeues at
   * once move such a message once; one waits up to `parkedScanWait` (from
   * the call) for the other, or for this broker's own listing or requeue
   * ahead of it, then rejects with a `ParkedScanBusyError`. A listing, count or requeue the
   * broker's close cut short (or made after it) rejects with a `BrokerConnectionError`
   * (`transient` false, "this broker was closed").
   */
  requeueParked(options: { limit?: number } = {}): Promise<number> {
    return this.#whileOpen(() => this.#parked.requeue(options.limit ?? 1000));
  }

  /** Does nothing: RabbitMQ has no visibility timeout to renew (resolves with none gone). */
  extend(_deliveries: readonly Delivery[]): Promise<Delivery[]> {
    return Promise.resolve([]);
  }

  /**
   * Publish to a broadcast exchange (declared as Celery declares it) with
   * the routing key (default empty).
   */
  async broadcast(exchange: string, message: Message, routingKey = ""): Promise<void> {
    await this.#publisher.withSession(async (session) => {
      await this.#declarations.exchange(session, exchange);
      await this.#publisher.confirmPublish(session, exchange, routingKey, message);
    });
  }

  /**
   * Consume a broadcast exchange through the subscriber's own queue
   * (kombu Mailbox's declarations for `celery.pidbox`), without
   * acknowledgements, until `signal` aborts. After a reconnect the queue is
   * declared and consumed again.
   */
  async subscribe(
    exchange: string,
    onMessage: (message: Message) => void,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    const decl = subscriberQueueDeclaration(
      exchange,
      options.queue ?? defaultSubscriberQueue(exchange),
    );
    const { ready, done, flush } = consumeAcrossReconnects({
      connection: this.#conn,
      signal: AbortSignal.any([options.signal, this.#closing.signal]),
      setUp: async (_session, channel) => {
        await channel.assertExchange(decl.exchange.name, decl.exchange.type, {
          durable: decl.exchange.durable,
          autoDelete: false,
        });
        await this.#declarations.assertQueue(channel, decl.queue);
        await channel.bindQueue(
          decl.queue.name,
          decl.exchange.name,
          options.bindingKey ?? decl.bindingKey,
        );
        return decl.queue.name;
      },
      onMessage,
      onCancel: (queue) =>
        log.warn(
          "RabbitMQ cancelled the consumer of queue {queue} subscribed to {exchange} " +
            "(the queue was deleted?): declaring it again and consuming",
          { queue, exchange },
        ),
      onRetry: (err) =>
        log.warn("Subscription to {exchange} failed: {error}; subscribing again", {
          exchange,
          error: err.message,
        }),
      retryDelayMs: CONSUME_RETRY_DELAY_MS,
    });
    const loop = done;
    this.#subscriptions.add(loop);
    loop.finally(() => this.#subscriptions.delete(loop));
    await ready;
    return { flush };
  }

  /** Append revoked ids to the `celeriac.revoked` stream. */
  addRevoked(entries: readonly RevokedEntry[]): Promise<void> {
    return addRevoked(this.#publisher, this.#declarations, entries);
  }

  /** Read the `celeriac.revoked` stream from its start; ids whose expiry passed are left out. */
  listRevoked(): Promise<RevokedEntry[]> {
    return listRevoked(this.#publisher, this.#declarations);
  }

  /** Close the connection; unacknowledged deliveries go back to their queues at once. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    await this.#taker.close();
    await Promise.all([...this.#subscriptions]);
    await this.#conn.close();
  }
}

/**
 * Open a RabbitMQ broker and check that it answers.
 *
 * @example
 * ```ts
 * import { openAmqpBroker } from "@celeriac/celeriac/transports";
 * const broker = await openAmqpBroker("amqp://guest:guest@127.0.0.1:5672/%2F?heartbeat=30");
 * await broker.close();
 * ```
 *
 * @param url `amqp://user:password@host:port/vhost?heartbeat=...&max_priority=...` or `amqps://`
 * @param options transport options
 * @returns the connected broker
 * @throws {BrokerConnectionError} when RabbitMQ cannot be reached
 * @throws {TypeError} when the URL or `publishTimeout` is invalid (0.001 to 2147483.647 s)
 */
export async function openAmqpBroker(
  url: string,
  options: AmqpBrokerOptions = {},
): Promise<AmqpBroker> {
  options.signal?.throwIfAborted();
  const broker = new AmqpBroker(url, options);
  await unlessAborted(broker.connect(options.signal), options.signal, () => broker.close());
  return broker;
}
