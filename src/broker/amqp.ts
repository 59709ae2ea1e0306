/**
 * The AMQP 0-9-1 (RabbitMQ) transport, wire-compatible with Celery 5.2 on
 * py-amqp: the same exchanges and queues with the same flags and arguments
 * (`amqp_topology.ts`), tasks published to the default exchange with the
 * queue as routing key, headers typed as py-amqp types them
 * (`amqp_table.ts`), publisher confirms, manual acknowledgements.
 *
 * Design decisions:
 *
 * - **Consumers, bounded by per-consumer prefetch.** `take(queues, { max })`
 *   is fed by long-lived consumers (`basic.consume`) on one channel per
 *   connection (`amqp_intake.ts`), whose deliveries wait in a local
 *   buffer. Each consumer starts with prefetch `max` (`basic.qos` with
 *   `global` false: quorum queues refuse channel-wide prefetch, and
 *   RabbitMQ deprecates it); one that could no longer buffer `max` (its
 *   handed-out deliveries are not settled yet) is replaced by a fresh one
 *   before the take. So RabbitMQ never gives this process more than what
 *   was handed out plus `max` per consumed queue. A take returns what is
 *   buffered (earlier queues first) or waits for the first arrival. When
 *   consumers start, the take waits one more round trip, so that what was
 *   ready is buffered and a take of `max` from a full queue gets `max`.
 *   Consuming other queues cancels the consumers of the old ones and
 *   requeues their buffered deliveries. `requeue()` of deliveries from the
 *   consumers' channel cancels the consumers first and requeues the buffer
 *   after them, so that they are back in front of it.
 * - **No hoarding.** A worker that stops taking (all its slots busy) must
 *   not sit on messages another worker could run: 50 ms after a take
 *   returns without another one starting, or at once when a take's signal
 *   aborts, the consumers are cancelled and every buffered delivery goes
 *   back to its queue (`basic.nack` with requeue: RabbitMQ marks it
 *   redelivered). The next take starts the consumers again. Between two
 *   takes RabbitMQ refills a consumer's buffer up to its prefetch: at most
 *   the `max` it started with, minus what it handed out, plus what was
 *   settled since —
 *   what a worker whose `max` is its free slots can run. A take with a
 *   smaller `max` than the one before leaves the surplus buffered (handed
 *   out by later takes, or back in its queue after those 50 ms) rather
 *   than requeueing it at once.
 * - **Batched acknowledgements.** Settlements are grouped per channel; a
 *   group that covers every delivery received before its last one goes as
 *   one `basic.ack` (or `basic.nack`) with `multiple`.
 * - **Parking.** A rejected message is republished (with confirm) to the
 *   durable queue `celeriac.parked` with a note in its
 *   `x-celeriac-parked` header (reason, queue, task id and name, time,
 *   original exchange and routing key), then acknowledged. RabbitMQ's own
 *   dead-lettering would need queue arguments that differ from what Celery
 *   declares. `listParked` reads the queue with `basic.get` and closes its
 *   channel, which puts everything back in order; `requeueParked`
 *   republishes to the original queue with an `x-celeriac-redelivered`
 *   header (a publisher cannot set AMQP's redelivered flag).
 * - **Revoked ids** live in the stream queue `celeriac.revoked`
 *   (`x-queue-type: stream`, `x-max-age: 7D`, 1 MB segments). A stream is
 *   read from its start by any number of workers at once without consuming
 *   it; a classic queue read with get-and-requeue would hide its entries
 *   from a second worker reading at the same moment. `listRevoked` appends
 *   a marker and reads up to it, skipping entries whose expiry passed.
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
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ConfirmChannel, Message as AmqpMessage } from "amqplib";
import type { Message } from "../protocol/message.ts";
import { parsePyDate } from "../protocol/time.ts";
import { HeldChannel, LazyChannel } from "./amqp_channel.ts";
import { AmqpConnection, type AmqpSession, isChannelError } from "./amqp_connection.ts";
import { consumeAcrossReconnects } from "./amqp_consume.ts";
import { Intake } from "./amqp_intake.ts";
import {
  fromIncoming,
  parkedCopy,
  readParkingNote,
  toContent,
  toPublishOptions,
  unparkedMessage,
} from "./amqp_message.ts";
import type { BackoffOptions } from "./amqp_state.ts";
import { Declarations, type TaskQueueInfo } from "./amqp_declare.ts";
import { DELAYED_ENTRY_EXCHANGE, delayedRoutingKey } from "./amqp_delayed.ts";
import {
  exchangeDeclaration,
  PARKED_QUEUE,
  parkedQueueDeclaration,
  type QueueType,
  REVOKED_STREAM,
  revokedStreamDeclaration,
  subscriberQueueDeclaration,
} from "./amqp_topology.ts";
import type {
  Broker,
  Delivery,
  ParkedMessage,
  PublishTarget,
  Rejection,
  RevokedEntry,
  SubscribeOptions,
  TakeOptions,
} from "./port.ts";

const log = getLogger(["celeriac", "broker", "amqp"]);

/** Milliseconds buffered deliveries wait for the next take before they go back to their queues. */
const LINGER_MS = 50;

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
  /** Reconnection delays. */
  backoff?: BackoffOptions;
  /** Connection name shown by RabbitMQ. Default `celeriac-broker`. */
  connectionName?: string;
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

interface Held {
  holder: HeldChannel;
  raw: AmqpMessage;
  settled: boolean;
}

/** A subscription's name for its own queue when the subscriber gives none. */
function defaultSubscriberQueue(exchange: string): string {
  const id = crypto.randomUUID();
  return exchangeDeclaration(exchange).type === "topic" ? `${exchange}.${id}` : `${id}.${exchange}`;
}

/** Whether any of the signals aborted. */
function stopped(stops: readonly AbortSignal[]): boolean {
  return stops.some((s) => s.aborted);
}

/**
 * A Celery-compatible RabbitMQ broker.
 *
 * @example
 * ```ts ignore
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
  readonly #publishTimeoutMs: number;
  readonly #held = new WeakMap<Delivery, Held>();
  readonly #publisher = new LazyChannel((s) => HeldChannel.openConfirm(s));
  #intake: Intake | null = null;
  #turn: Promise<void> = Promise.resolve();
  #linger: ReturnType<typeof setTimeout> | undefined;
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
    const u = this.#conn.url;
    this.#declarations = new Declarations({
      maxPriority: u.maxPriority ?? options.maxPriority,
      queueType: u.queueType ?? options.queueType,
      queueTypes: { ...options.queueTypes, ...u.queueTypes },
      exchangeType: u.exchangeType ?? options.exchangeType,
      deliveryLimit: u.deliveryLimit ?? options.deliveryLimit,
      delayQueueType: u.delayQueueType ?? options.delayQueueType,
    });
    const q = u.query;
    this.#publishTimeoutMs = Number(q.publish_timeout ?? options.publishTimeout ?? 30) * 1000;
  }

  /** The connection's state (`open`, `lost`, ...). */
  get connectionState(): string {
    return this.#conn.state;
  }

  /**
   * Connect now.
   *
   * @throws {BrokerConnectionError} when RabbitMQ cannot be reached
   */
  connect(): Promise<void> {
    return this.#conn.start();
  }

  #declareTaskQueue(session: AmqpSession, queue: string): Promise<TaskQueueInfo> {
    return this.#declarations.taskQueue(session, queue);
  }

  /** Declare a task queue as Celery does: exchange `<queue>` (direct, durable) bound with key `<queue>`. */
  async declareQueue(queue: string): Promise<void> {
    await this.#withSession((s) => this.#declareTaskQueue(s, queue));
  }

  /** Run `fn` on the live connection; once more on the next one if the connection died meanwhile. */
  async #withSession<T>(fn: (session: AmqpSession) => Promise<T>): Promise<T> {
    const deadline = AbortSignal.timeout(this.#publishTimeoutMs);
    while (true) {
      const session = await this.#conn.session({ timeoutMs: this.#publishTimeoutMs });
      try {
        return await fn(session);
      } catch (err) {
        if (!session.lost.aborted || deadline.aborted || this.#closing.signal.aborted) throw err;
        log.debug("Connection lost during an operation; retrying it on the next one");
      }
    }
  }

  async #confirmPublish(
    session: AmqpSession,
    exchange: string,
    routingKey: string,
    message: Message,
  ): Promise<void> {
    const { channel } = await this.#publisher.get(session);
    const content = toContent(message.body);
    const options = toPublishOptions(message);
    await new Promise<void>((resolve, reject) => {
      (channel as ConfirmChannel).publish(exchange, routingKey, content, options, (err) => {
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve();
      });
    });
  }

  /**
   * Publish one message; resolves once RabbitMQ confirmed it. To the
   * default exchange, the routing key's queue is declared first (Celery's
   * `task_create_missing_queues`); to Celery's own exchanges
   * (`reply.celery.pidbox`, ...), the exchange is declared as Celery does;
   * to an exchange that does not exist, the message is dropped with a
   * warning, as RabbitMQ drops unroutable messages.
   *
   * @throws {BrokerConnectionError} when the connection stays lost longer than `publishTimeout`
   */
  async publish(message: Message, target: PublishTarget): Promise<void> {
    const exchange = target.exchange ?? "";
    await this.#withSession(async (session) => {
      if (exchange === "") {
        const info = await this.#declareTaskQueue(session, target.routingKey);
        const delay = delaySeconds(message);
        if (
          info.queueType === "quorum" && delay >= 1 &&
          await this.#declarations.delayedDelivery(session, target.routingKey)
        ) {
          const key = delayedRoutingKey(delay, target.routingKey);
          await this.#confirmPublish(session, DELAYED_ENTRY_EXCHANGE, key, message);
          return;
        }
      } else if (!await this.#declarations.ensureExchange(session, exchange)) {
        log.warn("Exchange {exchange} does not exist: message for {key} dropped", {
          exchange,
          key: target.routingKey,
        });
        return;
      }
      await this.#confirmPublish(session, exchange, target.routingKey, message);
    });
  }

  #delivery(holder: HeldChannel, raw: AmqpMessage, queue: string): Delivery {
    const { message, redelivered } = fromIncoming(raw);
    const d: Delivery = {
      ...message,
      queue,
      deliveryTag: `${holder.session.epoch}.${holder.id}.${raw.fields.deliveryTag}`,
      redelivered,
      exchange: raw.fields.exchange,
      routingKey: raw.fields.routingKey,
    };
    holder.hold(raw);
    this.#held.set(d, { holder, raw, settled: false });
    return d;
  }

  /** Keep only deliveries whose channel still lives (the others come back by themselves). */
  #alive(deliveries: Delivery[]): Delivery[] {
    return deliveries.filter((d) => {
      const h = this.#held.get(d)!;
      if (h.holder.open) return true;
      h.settled = true;
      h.holder.settle([h.raw], "ack");
      return false;
    });
  }

  /**
   * Take up to `max` messages, earlier queues first among those buffered,
   * waiting while there are none; RabbitMQ never gives this process more
   * unacknowledged messages than were handed out plus `max` per queue. A
   * lost connection is waited out.
   */
  async take(queues: readonly string[], options: TakeOptions): Promise<Delivery[]> {
    if (queues.length === 0) throw new TypeError("take() needs at least one queue");
    if (!(options.max >= 1)) throw new RangeError("take() needs max >= 1");
    const max = Math.floor(options.max);
    const stops = options.signal ? [options.signal, this.#closing.signal] : [this.#closing.signal];
    clearTimeout(this.#linger);
    let got: Delivery[] = [];
    try {
      got = await this.#takeLoop(queues, max, stops);
    } finally {
      this.#scheduleStop(got.length > 0 && !stopped(stops) ? LINGER_MS : 0);
    }
    return got;
  }

  async #takeLoop(
    queues: readonly string[],
    max: number,
    stops: AbortSignal[],
  ): Promise<Delivery[]> {
    while (!stopped(stops)) {
      let session: AmqpSession;
      try {
        session = this.#conn.current ??
          await this.#conn.session({ signal: AbortSignal.any(stops) });
      } catch (err) {
        if (stopped(stops)) return [];
        throw err;
      }
      try {
        const round = await this.#exclusive(stops, () => this.#takeRound(session, queues, max));
        if (!round || round.got.length > 0) return round?.got ?? [];
        await round.intake.arrival(...stops, session.lost);
      } catch (err) {
        if (stopped(stops)) return [];
        if (isChannelError(err, 404)) {
          log.debug("A queue vanished while taking ({error}); declaring it again", {
            error: (err as Error).message,
          });
          this.#declarations.forget();
          continue;
        }
        if (!session.lost.aborted) throw err;
      }
    }
    return [];
  }

  /** Consume the queues with consumers that can buffer `max` and hand out what is buffered. */
  async #takeRound(session: AmqpSession, queues: readonly string[], max: number) {
    for (const q of queues) {
      const info = await this.#declareTaskQueue(session, q);
      if (info.queueType === "quorum") await this.#declarations.delayedDelivery(session, q);
    }
    const intake = await this.#intakeOf(session);
    if (intake.takeServerCancel()) {
      log.debug("RabbitMQ cancelled a consumer (its queue was deleted?); declaring again");
      this.#declarations.forget();
      for (const q of queues) await this.#declareTaskQueue(session, q);
    }
    await intake.prepare(queues, max);
    const got = this.#alive(
      intake.take(queues, max).map((b) => this.#delivery(intake.holder, b.raw, b.queue)),
    );
    return { intake, got };
  }

  async #intakeOf(session: AmqpSession): Promise<Intake> {
    if (this.#intake?.open && this.#intake.holder.session === session) return this.#intake;
    this.#intake = await Intake.open(session);
    return this.#intake;
  }

  /**
   * Run `fn` once the takes and stops before it are done; `undefined` when
   * one of `stops` aborts first.
   */
  async #exclusive<T>(stops: AbortSignal[], fn: () => Promise<T>): Promise<T | undefined> {
    const before = this.#turn;
    const { promise: mine, resolve: release } = Promise.withResolvers<void>();
    this.#turn = before.then(() => mine);
    const { promise: aborted, resolve } = Promise.withResolvers<void>();
    const abort = () => resolve();
    for (const s of stops) s.addEventListener("abort", abort, { once: true });
    try {
      if (stopped(stops)) return undefined;
      await Promise.race([before, aborted]);
      if (stopped(stops)) return undefined;
      return await fn();
    } finally {
      for (const s of stops) s.removeEventListener("abort", abort);
      release();
    }
  }

  /** In `ms`, cancel the consumers and requeue what they buffered, unless a take comes first. */
  #scheduleStop(ms: number): void {
    clearTimeout(this.#linger);
    if (!this.#intake || this.#closing.signal.aborted) return;
    this.#linger = setTimeout(() => {
      const intake = this.#intake;
      if (intake?.open) this.#exclusive([], () => intake.stop()).catch(() => {});
    }, ms);
  }

  #settle(deliveries: readonly Delivery[], how: "ack" | "requeue"): void {
    const byChannel = new Map<HeldChannel, AmqpMessage[]>();
    for (const d of deliveries) {
      const h = this.#held.get(d);
      if (!h || h.settled) continue;
      h.settled = true;
      const list = byChannel.get(h.holder);
      if (list) list.push(h.raw);
      else byChannel.set(h.holder, [h.raw]);
    }
    for (const [holder, raws] of byChannel) holder.settle(raws, how);
  }

  /** Acknowledge deliveries (dropped for deliveries whose connection is gone: RabbitMQ redelivers them). */
  ack(deliveries: readonly Delivery[]): Promise<void> {
    this.#settle(deliveries, "ack");
    return Promise.resolve();
  }

  /**
   * Put deliveries back in their queues (`basic.nack` with requeue; RabbitMQ
   * marks them redelivered). Deliveries of the consumers' channel go back
   * with the consumers cancelled and, after them, whatever the consumers
   * had buffered, so that they are back in front of it.
   */
  async requeue(deliveries: readonly Delivery[]): Promise<void> {
    const intake = this.#intake;
    const fromIntake = intake?.open &&
      deliveries.some((d) => this.#held.get(d)?.holder === intake.holder);
    if (!fromIntake) return this.#settle(deliveries, "requeue");
    await this.#exclusive([], () => intake.stop(() => this.#settle(deliveries, "requeue")));
  }

  /**
   * Park deliveries in `celeriac.parked` with their reasons, then
   * acknowledge them. A delivery whose connection is gone is not parked: it
   * comes back by itself and will be judged again.
   */
  async reject(rejections: readonly Rejection[]): Promise<void> {
    const now = new Date();
    const toPark = rejections.filter((r) => {
      const h = this.#held.get(r.delivery);
      return !h || h.settled || h.holder.open;
    });
    if (toPark.length === 0) return;
    await this.#withSession(async (session) => {
      await this.#declarations.queueOnly(session, parkedQueueDeclaration());
      await Promise.all(toPark.map((r) => {
        const d = r.delivery;
        const copy = parkedCopy(d, {
          id: crypto.randomUUID(),
          reason: r.reason,
          queue: d.queue,
          taskId: r.taskId ?? null,
          taskName: r.taskName ?? null,
          parkedAt: now,
          exchange: d.exchange,
          routingKey: d.routingKey,
        });
        return this.#confirmPublish(session, "", PARKED_QUEUE, copy);
      }));
    });
    for (const r of toPark) {
      log.error("Parked a message from {queue}: {reason}", {
        queue: r.delivery.queue,
        reason: r.reason,
      });
    }
    this.#settle(toPark.map((r) => r.delivery), "ack");
  }

  #isMissing(err: unknown): boolean {
    return isChannelError(err, 404);
  }

  /** Delete every waiting message of a queue; 0 for a queue that does not exist. */
  async purge(queue: string): Promise<number> {
    return await this.#withSession(async (session) => {
      const { channel } = await this.#declarations.admin.get(session);
      try {
        return (await channel.purgeQueue(queue)).messageCount;
      } catch (err) {
        if (this.#isMissing(err)) return 0;
        throw err;
      }
    });
  }

  /** Count ready messages of a queue (a passive declare); 0 for a queue that does not exist. */
  async queueDepth(queue: string): Promise<number> {
    return await this.#withSession(async (session) => {
      const { channel } = await this.#declarations.admin.get(session);
      try {
        return (await channel.checkQueue(queue)).messageCount;
      } catch (err) {
        if (this.#isMissing(err)) return 0;
        throw err;
      }
    });
  }

  /** Read up to `limit` messages of a queue on a channel of their own; `keep` decides which to acknowledge. */
  async #scanParked(
    session: AmqpSession,
    limit: number,
    visit: (raw: AmqpMessage, message: Message) => Promise<boolean>,
  ): Promise<void> {
    await this.#declarations.queueOnly(session, parkedQueueDeclaration());
    const held = await HeldChannel.open(session);
    try {
      for (let i = 0; i < limit; i++) {
        const raw = await held.channel.get(PARKED_QUEUE, { noAck: false });
        if (raw === false) break;
        if (await visit(raw, fromIncoming(raw).message)) held.channel.ack(raw);
      }
    } finally {
      await held.close();
    }
  }

  /** List parked messages, oldest first (read without removing them). */
  async listParked(options: { limit?: number } = {}): Promise<ParkedMessage[]> {
    const out: ParkedMessage[] = [];
    await this.#withSession(async (session) => {
      out.length = 0;
      await this.#scanParked(session, options.limit ?? 100, (_raw, message) => {
        const note = readParkingNote(message.headers);
        const h = message.headers;
        out.push({
          id: note?.id || String(message.properties.message_id ?? ""),
          reason: note?.reason ?? "parked by another tool (no x-celeriac-parked header)",
          queue: note?.queue ?? "",
          taskId: note?.taskId ?? (typeof h.id === "string" ? h.id : null),
          taskName: note?.taskName ?? (typeof h.task === "string" ? h.task : null),
          parkedAt: note?.parkedAt ?? new Date(0),
        });
        return Promise.resolve(false);
      });
    });
    return out;
  }

  /** Move parked messages back to their queues, marked redelivered; resolves with how many. */
  async requeueParked(options: { limit?: number } = {}): Promise<number> {
    let moved = 0;
    await this.#withSession(async (session) => {
      await this.#scanParked(session, options.limit ?? 1000, async (_raw, message) => {
        const note = readParkingNote(message.headers);
        if (!note?.queue) {
          log.warn("A parked message has no queue to go back to; it stays parked");
          return false;
        }
        await this.#declareTaskQueue(session, note.queue);
        await this.#confirmPublish(session, "", note.queue, unparkedMessage(message));
        moved++;
        return true;
      });
    });
    return moved;
  }

  /** Does nothing: RabbitMQ has no visibility timeout to renew. */
  extend(_deliveries: readonly Delivery[]): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Publish to a broadcast exchange (declared as Celery declares it) with
   * the routing key (default empty).
   */
  async broadcast(exchange: string, message: Message, routingKey = ""): Promise<void> {
    await this.#withSession(async (session) => {
      await this.#declarations.exchange(session, exchange);
      await this.#confirmPublish(session, exchange, routingKey, message);
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
  ): Promise<void> {
    const decl = subscriberQueueDeclaration(
      exchange,
      options.queue ?? defaultSubscriberQueue(exchange),
    );
    const { ready, done } = consumeAcrossReconnects({
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
      onRetry: (err) =>
        log.warn("Subscription to {exchange} failed: {error}; subscribing again", {
          exchange,
          error: err.message,
        }),
      retryDelayMs: 1000,
    });
    const loop = done;
    this.#subscriptions.add(loop);
    loop.finally(() => this.#subscriptions.delete(loop));
    await ready;
  }

  /** Append revoked ids to the `celeriac.revoked` stream. */
  async addRevoked(entries: readonly RevokedEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.#withSession(async (session) => {
      await this.#declarations.queueOnly(session, revokedStreamDeclaration());
      await Promise.all(
        entries.map((e) =>
          this.#confirmPublish(session, "", REVOKED_STREAM, revokedEntryMessage(e))
        ),
      );
    });
  }

  /** Read the `celeriac.revoked` stream from its start; ids whose expiry passed are left out. */
  async listRevoked(): Promise<RevokedEntry[]> {
    return await this.#withSession(async (session) => {
      await this.#declarations.queueOnly(session, revokedStreamDeclaration());
      const marker = crypto.randomUUID();
      await this.#confirmPublish(session, "", REVOKED_STREAM, revokedMarkerMessage(marker));
      const held = await HeldChannel.open(session);
      const latest = new Map<string, number>();
      try {
        await held.channel.prefetch(500);
        const { promise: reached, resolve, reject } = Promise.withResolvers<void>();
        session.lost.addEventListener("abort", () => reject(session.lost.reason), { once: true });
        if (session.lost.aborted) reject(session.lost.reason);
        held.channel.once("close", () => reject(new Error("the revoked stream's channel closed")));
        await held.channel.consume(REVOKED_STREAM, (m) => {
          if (!m) return;
          held.channel.ack(m);
          const entry = readRevokedEntry(m.content);
          if (entry === marker) resolve();
          else if (entry && typeof entry === "object") {
            latest.set(entry.id, Math.max(latest.get(entry.id) ?? 0, entry.expiresAt));
          }
        }, { noAck: false, arguments: { "x-stream-offset": "first" } });
        await reached;
      } finally {
        await held.close();
      }
      const now = Date.now();
      return [...latest]
        .filter(([, at]) => at > now)
        .map(([id, at]) => ({ id, expiresAt: new Date(at) }));
    });
  }

  /** Close the connection; unacknowledged deliveries go back to their queues at once. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    clearTimeout(this.#linger);
    await Promise.all([...this.#subscriptions]);
    await this.#conn.close();
  }
}

/**
 * Whole seconds until a task message's `eta` header (0 without one, or
 * when it has passed; at most 2^28 - 1, the longest native delay).
 */
function delaySeconds(message: Message): number {
  const eta = message.headers.eta;
  if (typeof eta !== "string") return 0;
  const ms = parsePyDate(eta).getTime() - Date.now();
  if (!(ms >= 1000)) return 0;
  return Math.min(Math.trunc(ms / 1000), 2 ** 28 - 1);
}

function revokedEntryMessage(e: RevokedEntry): Message {
  return {
    body: new TextEncoder().encode(
      JSON.stringify({ task_id: e.id, expires: e.expiresAt.getTime() / 1000 }),
    ),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    properties: { delivery_mode: 2 },
  };
}

function revokedMarkerMessage(marker: string): Message {
  return {
    body: new TextEncoder().encode(JSON.stringify({ marker })),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    properties: { delivery_mode: 1 },
  };
}

/** An entry of the revoked stream: an id with its expiry (ms), a marker's text, or null. */
function readRevokedEntry(content: Uint8Array): { id: string; expiresAt: number } | string | null {
  try {
    const v = JSON.parse(new TextDecoder().decode(content));
    if (typeof v?.marker === "string") return v.marker;
    if (typeof v?.task_id === "string" && typeof v.expires === "number") {
      return { id: v.task_id, expiresAt: v.expires * 1000 };
    }
  } catch {
    // an entry another tool wrote: skipped
  }
  return null;
}

/**
 * Open a RabbitMQ broker and check that it answers.
 *
 * @example
 * ```ts ignore
 * import { openAmqpBroker } from "@celeriac/celeriac/transports";
 * const broker = await openAmqpBroker("amqp://guest:guest@127.0.0.1:5672/%2F?heartbeat=30");
 * await broker.close();
 * ```
 *
 * @param url `amqp://user:password@host:port/vhost?heartbeat=...&max_priority=...` or `amqps://`
 * @param options transport options
 * @returns the connected broker
 * @throws {BrokerConnectionError} when RabbitMQ cannot be reached
 */
export async function openAmqpBroker(
  url: string,
  options: AmqpBrokerOptions = {},
): Promise<AmqpBroker> {
  const broker = new AmqpBroker(url, options);
  await broker.connect();
  return broker;
}
