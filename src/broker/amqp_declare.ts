/**
 * Declaring exchanges and queues on RabbitMQ, once per connection, on a
 * channel of their own (a refused declaration closes its channel, never
 * the consumers'). Checks that may be refused by design (does a reply
 * exchange exist?) run on short channels of their own, and a declaration
 * failed only by another one's refusal runs again ({@link AdminChannels}).
 *
 * Task queues are declared as configured (classic or quorum, direct or
 * topic exchange), but a queue or exchange that already exists with
 * another type is used as it is: RabbitMQ names the type it has in its
 * `PRECONDITION_FAILED` answer, and the declaration is made again with
 * that type. So a Celeriac worker started with defaults consumes a quorum
 * queue a Python worker (Celery 5.5 `task_default_queue_type = "quorum"`)
 * declared, and learns that delayed messages for it go through native
 * delayed delivery. Celery's own `worker_detect_quorum_queues` reads the
 * worker's configuration instead; asking RabbitMQ also covers queues
 * someone else declared.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Channel } from "amqplib";
import { AdminChannels } from "./amqp_admin.ts";
import { type AmqpSession, isChannelError } from "./amqp_connection.ts";
import {
  DELAYED_DELIVERY_EXCHANGE,
  delayedBindingKey,
  type DelayLevel,
  delayLevels,
} from "./amqp_delayed.ts";
import { explainRefusedAccess } from "./amqp_failures.ts";
import { RevokedStreamMismatchError } from "./errors.ts";
import { toAmqpTable } from "./amqp_table.ts";
import type { QueueBinding } from "./port.ts";
import {
  type BoundQueue,
  exchangeDeclaration,
  isKnownExchange,
  parkedQueueDeclaration,
  parseInequivalentArg,
  type QueueDeclaration,
  type QueueType,
  REVOKED_STREAM_MAX_AGE,
  revokedStreamDeclaration,
  taskQueueDeclaration,
} from "./amqp_topology.ts";

const log = getLogger(["celeriac", "broker", "amqp"]);

/**
 * How task queues are declared.
 *
 * @example
 * ```ts
 * const options: DeclarationOptions = { queueType: "quorum", exchangeType: "topic" };
 * ```
 */
export interface DeclarationOptions {
  /** `x-max-priority` of classic task queues. Default none. */
  maxPriority?: number;
  /** Type of task queues not named in `queueTypes`. Default `classic`. */
  queueType?: QueueType;
  /** Types of particular task queues. */
  queueTypes?: Readonly<Record<string, QueueType>>;
  /** Exchange type of task queues. Default `direct`. */
  exchangeType?: "direct" | "topic";
  /** `x-delivery-limit` of quorum task queues. Default none. */
  deliveryLimit?: number;
  /** Type of the 28 delay queues (Celery `broker_native_delayed_delivery_queue_type`). Default `quorum`. */
  delayQueueType?: QueueType;
}

/**
 * What a task queue turned out to be.
 *
 * @example
 * ```ts ignore
 * const info: TaskQueueInfo = await declarations.taskQueue(session, "celery");
 * if (info.queueType === "quorum") console.log("replicated");
 * ```
 */
export interface TaskQueueInfo {
  /** Its type on RabbitMQ. */
  queueType: QueueType;
  /** Its exchange's type on RabbitMQ. */
  exchangeType: "direct" | "topic";
}

/**
 * Declarations made on one connection, and what task queues are.
 *
 * @example
 * ```ts ignore
 * const declarations = new Declarations({ queueType: "quorum" });
 * const info = await declarations.taskQueue(session, "celery");
 * ```
 */
export class Declarations {
  /** The channels declarations use. */
  readonly admin: AdminChannels = new AdminChannels();
  readonly #options: DeclarationOptions;
  #declared = new Set<string>();
  /**
   * Declarations under way on this connection, by key: concurrent first uses
   * (a new client's first hundreds of sends, its first revokes) wait for the
   * one under way instead of each queueing the same RPCs on the admin channel.
   */
  #pending = new Map<string, Promise<void>>();
  #epoch = 0;
  readonly #known = new Map<string, TaskQueueInfo>();
  readonly #warnedDirect = new Set<string>();
  /** Whether the revoked stream's other arguments were logged. */
  #warnedRevoked = false;

  /**
   * @param options how task queues are declared
   * @throws {TypeError} for a maximum priority with quorum queues only,
   *   which would never apply (quorum queues take no `x-max-priority`)
   */
  constructor(options: DeclarationOptions = {}) {
    if (options.maxPriority && options.queueType === "quorum") {
      throw new TypeError(
        `max_priority=${options.maxPriority} cannot apply with queue_type=quorum: RabbitMQ ` +
          "quorum queues take no x-max-priority, so task priorities would be ignored. Keep " +
          "classic queues for priorities (drop queue_type=quorum, or name the quorum ones with " +
          "quorum_queues=a,b), or drop max_priority",
      );
    }
    this.#options = options;
  }

  /** Forget what was declared (a queue was deleted): declare again on next use. */
  forget(): void {
    this.#declared.clear();
  }

  #isDeclared(session: AmqpSession, key: string): boolean {
    if (this.#epoch !== session.epoch) {
      this.#epoch = session.epoch;
      this.#declared = new Set();
      this.#pending = new Map();
    }
    return this.#declared.has(key);
  }

  /**
   * Run `declare` (which marks `key` declared when it succeeds) unless `key`
   * is declared on this connection; while one runs, later callers wait for it
   * and share its outcome.
   */
  async #single(session: AmqpSession, key: string, declare: () => Promise<void>): Promise<void> {
    if (this.#isDeclared(session, key)) return;
    const under = this.#pending.get(key);
    if (under) return await under;
    const pending = this.#pending;
    const run = declare().finally(() => {
      if (pending.get(key) === run) pending.delete(key);
    });
    pending.set(key, run);
    await run;
  }

  /**
   * Run a declaration once per connection.
   *
   * @param session the connection
   * @param key what is declared
   * @param fn declares it on the admin channel
   */
  async once(session: AmqpSession, key: string, fn: (ch: Channel) => Promise<unknown>) {
    await this.#single(session, key, async () => {
      await this.admin.run(session, fn).catch((err) => {
        throw explainRefusedAccess(err);
      });
      this.#declared.add(key);
    });
  }

  /**
   * Declare a queue with its flags and arguments.
   *
   * @param ch the channel
   * @param q the declaration
   * @returns amqplib's answer
   */
  assertQueue(ch: Channel, q: QueueDeclaration): ReturnType<Channel["assertQueue"]> {
    return ch.assertQueue(q.name, {
      durable: q.durable,
      autoDelete: q.autoDelete,
      exclusive: q.exclusive,
      arguments: toAmqpTable(q.arguments),
    });
  }

  async #declareBound(ch: Channel, b: BoundQueue): Promise<void> {
    await ch.assertExchange(b.exchange.name, b.exchange.type, {
      durable: b.exchange.durable,
      autoDelete: false,
    });
    await this.assertQueue(ch, b.queue);
    await ch.bindQueue(b.queue.name, b.exchange.name, b.bindingKey);
  }

  #wanted(queue: string): TaskQueueInfo {
    return {
      queueType: this.#options.queueTypes?.[queue] ?? this.#options.queueType ?? "classic",
      exchangeType: this.#options.exchangeType ?? "direct",
    };
  }

  /**
   * Declare a task queue as configured, or, when it exists with another
   * queue or exchange type, as it is.
   *
   * @param session the connection
   * @param queue the queue
   * @returns what the queue is
   */
  async taskQueue(session: AmqpSession, queue: string): Promise<TaskQueueInfo> {
    await this.#single(session, `q:${queue}`, () => this.#declareTaskQueue(session, queue));
    return this.#known.get(queue)!;
  }

  async #declareTaskQueue(session: AmqpSession, queue: string): Promise<void> {
    let info = this.#known.get(queue) ?? this.#wanted(queue);
    const o = this.#options;
    if (o.deliveryLimit !== undefined) await this.queueOnly(session, parkedQueueDeclaration());
    for (let tries = 0;; tries++) {
      const b = taskQueueDeclaration(queue, {
        maxPriority: o.maxPriority,
        queueType: info.queueType,
        exchangeType: info.exchangeType,
        deliveryLimit: o.deliveryLimit,
      });
      try {
        await this.admin.run(session, (channel) => this.#declareBound(channel, b));
        break;
      } catch (err) {
        if (!isChannelError(err, 406)) throw explainRefusedAccess(err);
        const found = parseInequivalentArg((err as Error).message);
        const adapted = tries < 2 && found ? adapt(info, found) : null;
        if (adapted) {
          log.info("{what} {queue} exists as {type}: using it as such", {
            what: found!.of === "queue" ? "Queue" : "Exchange",
            queue,
            type: found!.current,
          });
          info = adapted;
          continue;
        }
        log.warn(
          "Queue {queue} exists with other settings than Celeriac would declare ({error}); using it " +
            "as it is. To have it as configured, either make the setting match the queue ({arg} " +
            "is {current} there: the broker URL's queue options, the queue's arguments) or delete " +
            "the queue so that it is declared again (rabbitmqctl delete_queue -p {vhost} {queue}; its " +
            "messages are deleted with it)",
          {
            queue,
            error: (err as Error).message,
            arg: found?.arg ?? "an argument",
            current: found?.current ?? "different",
            vhost: /in vhost '([^']*)'/.exec((err as Error).message)?.[1] ?? "<vhost>",
          },
        );
        break;
      }
    }
    this.#known.set(queue, info);
    this.#declared.add(`q:${queue}`);
  }

  /**
   * Declare an exchange Celeriac publishes or broadcasts to, as Celery does.
   *
   * @param session the connection
   * @param name exchange name
   */
  exchange(session: AmqpSession, name: string): Promise<void> {
    const e = exchangeDeclaration(name);
    return this.once(
      session,
      `x:${name}`,
      (ch) => ch.assertExchange(e.name, e.type, { durable: e.durable, autoDelete: false }),
    );
  }

  /**
   * Declare a known exchange, or check that an unknown one exists.
   *
   * @param session the connection
   * @param name exchange name
   * @returns false when an unknown exchange does not exist
   */
  async ensureExchange(session: AmqpSession, name: string): Promise<boolean> {
    if (isKnownExchange(name)) {
      await this.exchange(session, name);
      return true;
    }
    const key = `x:${name}`;
    try {
      await this.#single(session, key, async () => {
        await this.admin.probe(session, (ch) => ch.checkExchange(name));
        this.#declared.add(key);
      });
      return true;
    } catch (err) {
      if (isChannelError(err, 404)) return false;
      throw err;
    }
  }

  /**
   * Declare a task queue (as {@link taskQueue} does) and bind it to a named
   * exchange, declared durable with the binding's type; once per connection.
   *
   * @param session the connection
   * @param queue the queue
   * @param binding the exchange, its type and the binding key
   */
  async binding(session: AmqpSession, queue: string, binding: QueueBinding): Promise<void> {
    await this.taskQueue(session, queue);
    const { exchange, type, routingKey } = binding;
    await this.once(session, `b:${exchange}\u0000${routingKey}\u0000${queue}`, async (ch) => {
      await ch.assertExchange(exchange, type, { durable: true, autoDelete: false });
      await ch.bindQueue(queue, exchange, routingKey);
    });
  }

  /**
   * Declare a queue with no binding.
   *
   * @param session the connection
   * @param q the declaration
   */
  queueOnly(session: AmqpSession, q: QueueDeclaration): Promise<void> {
    return this.once(session, `q:${q.name}`, (ch) => this.assertQueue(ch, q));
  }

  /**
   * Declare the revoked stream ({@link revokedStreamDeclaration}). One that
   * exists with another `x-max-age` — an earlier version's `7D` — is used as
   * it is (checked to exist, logged once): RabbitMQ refuses to declare an
   * existing queue with other arguments (`PRECONDITION_FAILED`), and a
   * running set-up must keep revoking through an upgrade.
   *
   * @param session the connection
   * @throws {RevokedStreamMismatchError} when a queue of that name differs in
   *   anything else (a classic or quorum queue): it must be deleted
   */
  async revokedStream(session: AmqpSession): Promise<void> {
    const key = `q:${revokedStreamDeclaration().name}`;
    await this.#single(session, key, () => this.#declareRevokedStream(session, key));
  }

  async #declareRevokedStream(session: AmqpSession, key: string): Promise<void> {
    const q = revokedStreamDeclaration();
    try {
      await this.admin.run(session, (ch) => this.assertQueue(ch, q));
    } catch (err) {
      if (!isChannelError(err, 406)) throw explainRefusedAccess(err);
      const arg = parseInequivalentArg((err as Error).message)?.arg;
      if (arg !== "x-max-age") throw new RevokedStreamMismatchError(q.name, arg, err);
      if (!this.#warnedRevoked) {
        this.#warnedRevoked = true;
        log.info(
          "The revoked stream {queue} exists with other arguments than this version declares " +
            "({error}); using it as it is. It keeps entries longer than the {age} needed (an " +
            "earlier version's 7 days); to shorten it, delete it when no worker runs: the next " +
            "one declares it anew (revokes of the last 3 hours are then forgotten)",
          { queue: q.name, error: (err as Error).message, age: REVOKED_STREAM_MAX_AGE },
        );
      }
      await this.admin.run(session, (ch) => ch.checkQueue(q.name)).catch((e) => {
        throw explainRefusedAccess(e);
      });
    }
    this.#declared.add(key);
  }

  /**
   * Make delayed messages reach a task queue through native delayed
   * delivery: declare the 28 levels (once per connection) and bind the
   * queue's exchange to `celery_delayed_delivery` and the queue to its
   * exchange with `#.<queue>`. Only a topic exchange can route those keys:
   * for a direct one, nothing is bound and the answer is false (ETA tasks
   * for it wait in the worker, as with Celery).
   *
   * @param session the connection
   * @param queue the task queue (declared before)
   * @returns whether delayed messages can reach the queue
   */
  async delayedDelivery(session: AmqpSession, queue: string): Promise<boolean> {
    const info = this.#known.get(queue) ?? await this.taskQueue(session, queue);
    if (info.exchangeType !== "topic") {
      if (!this.#warnedDirect.has(queue)) {
        this.#warnedDirect.add(queue);
        log.warn(
          "Queue {queue} is bound to a direct exchange: native delayed delivery needs a topic exchange " +
            "(exchange_type=topic, Celery's task_default_exchange_type); its ETA tasks wait in the worker",
          { queue },
        );
      }
      return false;
    }
    await this.#delayTopology(session);
    const key = delayedBindingKey(queue);
    await this.once(session, `delayed:${queue}`, async (ch) => {
      await ch.bindExchange(queue, DELAYED_DELIVERY_EXCHANGE, key);
      await ch.bindQueue(queue, queue, key);
    });
    return true;
  }

  async #delayTopology(session: AmqpSession): Promise<void> {
    await this.#single(session, "delayed", () => this.#declareDelayTopology(session));
  }

  async #declareDelayTopology(session: AmqpSession): Promise<void> {
    let type = this.#options.delayQueueType ?? "quorum";
    for (let tries = 0;; tries++) {
      const levels = delayLevels(type);
      try {
        await this.admin.run(
          session,
          (channel) => declareLevels(channel, levels, (q) => this.assertQueue(channel, q)),
        );
        break;
      } catch (err) {
        if (!isChannelError(err, 406)) throw err;
        const found = parseInequivalentArg((err as Error).message);
        if (tries >= 1 || found?.arg !== "x-queue-type") throw err;
        log.info("The delay queues exist as {type} queues: using them as such", {
          type: found.current,
        });
        type = found.current === "quorum" ? "quorum" : "classic";
      }
    }
    this.#declared.add("delayed");
  }
}

/** Declare the delay levels' exchanges, queues and bindings, and the delivery exchange. */
async function declareLevels(
  ch: Channel,
  levels: readonly DelayLevel[],
  assertQueue: (q: QueueDeclaration) => Promise<unknown>,
): Promise<void> {
  const topic = { durable: true, autoDelete: false };
  for (const l of levels) {
    await ch.assertExchange(l.exchange, "topic", topic);
    await assertQueue(l.queue);
    await ch.bindQueue(l.queue.name, l.exchange, l.waitKey);
  }
  await ch.assertExchange(DELAYED_DELIVERY_EXCHANGE, "topic", topic);
  for (const l of levels) await ch.bindExchange(l.next, l.exchange, l.skipKey);
}

/** The types to declare with after RabbitMQ named what exists; null when nothing can be adapted. */
function adapt(
  info: TaskQueueInfo,
  found: { of: "queue" | "exchange"; arg: string; current: string },
): TaskQueueInfo | null {
  if (found.of === "queue" && found.arg === "x-queue-type") {
    const queueType: QueueType = found.current === "quorum" ? "quorum" : "classic";
    if (found.current !== "quorum" && found.current !== "classic" && found.current !== "none") {
      return null;
    }
    return queueType === info.queueType ? null : { ...info, queueType };
  }
  if (found.of === "exchange" && found.arg === "type") {
    if (found.current !== "direct" && found.current !== "topic") return null;
    return found.current === info.exchangeType ? null : { ...info, exchangeType: found.current };
  }
  return null;
}
