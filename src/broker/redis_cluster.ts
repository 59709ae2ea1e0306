/**
 * The Redis Cluster broker (`redis+cluster://host:port,host:port`): the
 * Redis transport, sharded by queue.
 *
 * Redis Cluster runs a Lua script or a transaction only when all its keys
 * hash to one slot. The Redis transport's scripts touch a queue's lists,
 * the unacknowledged hash and index and the parking list together, so
 * each queue gets the Redis transport of its own, with every key prefixed
 * by the hash tag `{<queue>}` (the `global_keyprefix` form Celery users
 * reach for): one queue's keys live in one slot, different queues spread
 * over the cluster's masters. Bookkeeping that belongs to no queue
 * (broadcast channels, revoked ids, rate-limit buckets, the list of known
 * queues) lives under the tag `{celeriac}`. A take over several queues
 * runs a take on each and keeps what arrives first; the rest goes back to
 * its queue (redis_cluster_take.ts), and a queue whose master is down
 * does not hold up the others. Python Celery (kombu) cannot use Redis Cluster, so this
 * layout is Celeriac's own.
 *
 * @module
 */

import {
  batchFailure,
  BatchPublishError,
  maskPassword,
  type PublishOutcome,
  singleFailure,
} from "./errors.ts";
import { getLogger } from "@logtape/logtape";
import type { Redis } from "ioredis";
import type { Message } from "../protocol/message.ts";
import { PIDBOX_REPLY_EXCHANGE } from "../protocol/control.ts";
import type {
  Broker,
  Delivery,
  ParkedMessage,
  Publication,
  PublishManyOptions,
  PublishTarget,
  Rejection,
  RequeueOptions,
  RevokedEntry,
  SubscribeOptions,
  Subscription,
  TakeOptions,
  TokenGrant,
  TokenRequest,
} from "./port.ts";
import { checkTakeArguments } from "./deliveries.ts";
import { RedisBroker, type RedisBrokerOptions, SHARED_CONNECTION } from "./redis.ts";
import type { RedisClient } from "./redis_client.ts";
import { closeRedis, connectRedis, openRedisConnection, prepareRedis } from "./redis_connection.ts";
import { ClusterTakes } from "./redis_cluster_take.ts";
import { guardRedis } from "./redis_guard.ts";
import { isClusterUrl, parseRedisUrl, type RedisUrlOptions } from "./redis_url.ts";
import { unlessAborted } from "./sleep.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/** The hash tag of keys that belong to no queue. */
const GLOBAL_TAG = "{celeriac}";
/**
 * Where {@link RedisClusterBroker.publishMany} groups remote-control replies
 * (not a queue name: a NUL cannot be in one that reaches a publish).
 */
const REPLIES_GROUP = "\u0000replies";
/** The set (under {@link GLOBAL_TAG}) of queues this cluster has carried. */
const QUEUES_KEY = "celeriac.queues";

/**
 * The hash-tagged key prefix of a queue's keys.
 *
 * @example
 * ```ts
 * import { queueTag } from "./redis_cluster.ts";
 * queueTag("reports"); // "{reports}"
 * ```
 *
 * @param queue the queue
 * @returns its prefix
 */
export function queueTag(queue: string): string {
  return `{${queue}}`;
}

/**
 * The URL of a queue's own broker: the cluster URL without
 * `global_keyprefix` (each queue's keys go after its hash tag instead),
 * from the query the parser split off — a `?` in the password is no query.
 *
 * @example
 * ```ts
 * import { parseRedisUrl } from "./redis_url.ts";
 * import { clusterShardUrl } from "./redis_cluster.ts";
 * const raw = "redis+cluster://:p?w@10.0.0.1:7000?global_keyprefix=app:&visibility_timeout=9";
 * clusterShardUrl(raw, parseRedisUrl(raw));
 * // "redis+cluster://:p?w@10.0.0.1:7000?visibility_timeout=9"
 * ```
 *
 * @param rawUrl the `redis+cluster://` URL
 * @param parsed what {@link parseRedisUrl} made of it
 * @returns the URL for a queue's broker
 */
export function clusterShardUrl(rawUrl: string, parsed: RedisUrlOptions): string {
  const written = rawUrl.trim();
  const search = parsed.search ?? "";
  const q = new URLSearchParams(search);
  q.delete("global_keyprefix");
  return written.slice(0, written.length - search.length) + (q.size ? `?${q}` : "");
}

/**
 * A Celeriac broker on Redis Cluster.
 *
 * @example
 * ```ts
 * import { openRedisClusterBroker } from "@celeriac/celeriac/transports";
 * const broker = await openRedisClusterBroker("redis+cluster://127.0.0.1:7000,127.0.0.1:7001");
 * await broker.close();
 * ```
 */
export class RedisClusterBroker implements Broker {
  /** Always `redis`. */
  readonly transport = "redis";
  /** Seconds before an unacknowledged message goes back to its queue. */
  readonly visibilityTimeout: number;
  /** Always true: every delivery's headers are checked as its envelope is decoded. */
  readonly headersChecked = true;
  readonly #rawUrl: string;
  readonly #shardUrl: string;
  readonly #options: RedisBrokerOptions;
  readonly #userPrefix: string;
  readonly #client: Redis;
  readonly #shards = new Map<string, RedisBroker>();
  readonly #global: RedisBroker;
  readonly #known = new Set<string>();
  /** Queues being added to the set of known queues in the background ({@link #rememberSoon}). */
  readonly #remembering = new Set<string>();
  readonly #takes = new ClusterTakes((q) => this.#shard(q), (ds) => this.requeue(ds));

  /**
   * Use {@link openRedisClusterBroker}.
   *
   * @param rawUrl `redis+cluster://host:port,host:port/0?visibility_timeout=...`
   * @param options transport options (`keyPrefix` goes after each hash tag)
   */
  constructor(rawUrl: string, options: RedisBrokerOptions = {}) {
    if (!isClusterUrl(rawUrl)) {
      throw new TypeError(
        `Not a Redis Cluster URL: "${maskPassword(rawUrl)}" (use redis+cluster://host:port,...)`,
      );
    }
    const url = parseRedisUrl(rawUrl);
    this.#rawUrl = rawUrl;
    this.#userPrefix = url.query.global_keyprefix ?? options.keyPrefix ?? "";
    this.#shardUrl = clusterShardUrl(rawUrl, url);
    this.#options = options;
    this.#client = openRedisConnection(url, rawUrl, {
      autoPipelining: true,
      name: "celeriac-broker",
    }) as unknown as Redis;
    this.#global = this.#open(GLOBAL_TAG);
    this.visibilityTimeout = this.#global.visibilityTimeout;
  }

  #open(tag: string): RedisBroker {
    const options = {
      ...this.#options,
      keyPrefix: tag + this.#userPrefix,
      [SHARED_CONNECTION]: this.#client as unknown as RedisClient,
    };
    return new RedisBroker(this.#shardUrl, options);
  }

  #shard(queue: string): RedisBroker {
    let s = this.#shards.get(queue);
    if (!s) {
      s = this.#open(queueTag(queue));
      this.#shards.set(queue, s);
    }
    return s;
  }

  async #remember(queue: string): Promise<void> {
    if (this.#known.has(queue)) return;
    await guardRedis(this.#rawUrl, () => this.#client.sadd(GLOBAL_TAG + QUEUES_KEY, queue));
    this.#known.add(queue);
  }

  /**
   * {@link #remember} in the background: a take or a declaration does not
   * wait for the `{celeriac}` slot (whose master may be down while the
   * queue's is up); a failure is tried again by the next take.
   */
  #rememberSoon(queue: string): void {
    if (this.#known.has(queue) || this.#remembering.has(queue)) return;
    this.#remembering.add(queue);
    this.#remember(queue).catch((err) =>
      log.debug("Could not note queue {queue} in the list of known queues: {error}", {
        queue,
        error: (err as Error).message,
      })
    ).finally(() => this.#remembering.delete(queue));
  }

  /** Every queue this cluster has carried (for parked-message listings). */
  async #allQueues(): Promise<string[]> {
    const listed = await guardRedis(
      this.#rawUrl,
      () => this.#client.smembers(GLOBAL_TAG + QUEUES_KEY),
    );
    return [...new Set([...listed, ...this.#known])].sort();
  }

  /** Connect now. */
  connect(): Promise<void> {
    return connectRedis(this.#client, this.#rawUrl);
  }

  /** Stop waiting on a queue no longer consumed (see `RedisBroker.releaseQueue`). */
  async releaseQueue(queue: string): Promise<void> {
    await this.#shards.get(queue)?.releaseQueue(queue);
  }

  /**
   * Declare a queue (in its own slot), in the background: a worker's start
   * does not wait for a queue whose master is unreachable (its binding,
   * which nothing on a cluster routes by, is written by the queue's first
   * publish too; a failure is logged).
   */
  declareQueue(queue: string): Promise<void> {
    this.#rememberSoon(queue);
    this.#shard(queue).declareQueue(queue).catch((err) =>
      log.warn("Could not declare queue {queue} ({error}); its first publish declares it", {
        queue,
        error: (err as Error).message,
      })
    );
    return Promise.resolve();
  }

  /**
   * Publish to a queue: tasks are routed by queue (the routing key), an
   * exchange is ignored with a warning.
   */
  async publish(message: Message, target: PublishTarget): Promise<void> {
    try {
      await this.publishMany([{ message, target }]);
    } catch (err) {
      throw singleFailure(err);
    }
  }

  /**
   * Publish many messages: each queue's in one batch of its own slot
   * (LPUSHes of up to 1,000 messages, in order), the queues concurrently.
   * Exchanges are ignored as by {@link publish} (warned once per exchange and queue).
   */
  async publishMany(batch: readonly Publication[], options?: PublishManyOptions): Promise<void> {
    const queues = new Map<string, { ps: Publication[]; at: number[] }>();
    const warned = new Set<string>();
    batch.forEach(({ message, target }, i) => {
      const exchange = target.exchange ?? "";
      if (exchange === PIDBOX_REPLY_EXCHANGE) {
        // A remote-control reply: its list and binding live under {celeriac},
        // where the asking client's subscribe bound them (REPLIES_GROUP).
        const q = queues.get(REPLIES_GROUP);
        if (q) {
          q.ps.push({ message, target });
          q.at.push(i);
        } else queues.set(REPLIES_GROUP, { ps: [{ message, target }], at: [i] });
        return;
      }
      const route = exchange === "" ? "" : `${exchange}\u0000${target.routingKey}`;
      if (route !== "" && !warned.has(route)) {
        warned.add(route);
        log.warn(
          "Redis Cluster routes tasks by queue only: exchange {exchange} ignored, publishing to queue {queue}",
          { exchange, queue: target.routingKey },
        );
      }
      const p = { message, target: { routingKey: target.routingKey } };
      const q = queues.get(target.routingKey);
      if (q) {
        q.ps.push(p);
        q.at.push(i);
      } else queues.set(target.routingKey, { ps: [p], at: [i] });
    });
    const settled = await Promise.allSettled([...queues].map(async ([group, { ps }]) => {
      if (group === REPLIES_GROUP) return await this.#global.publishMany(ps, options);
      this.#rememberSoon(ps[0].target.routingKey);
      await this.#shard(ps[0].target.routingKey).publishMany(ps, options);
    }));
    const failed = settled.find((r) => r.status === "rejected");
    if (!failed) return;
    // Each queue's outcomes, put back in the batch's places.
    const out = new Array<PublishOutcome>(batch.length);
    [...queues.values()].forEach(({ at }, q) => {
      const r = settled[q];
      const of = r.status === "fulfilled"
        ? () => "sent" as const
        : r.reason instanceof BatchPublishError
        ? (j: number) => (r.reason as BatchPublishError).outcomes[j]
        : () => "unsent" as const;
      at.forEach((i, j) => out[i] = of(j));
    });
    throw batchFailure(out, failed.reason);
  }

  /**
   * Take up to `max` messages from the queues, earlier queues first. With
   * several queues a take runs on each (they live on different masters);
   * the first to return ends the others, and what they took beyond `max`
   * goes back to its queue. A queue whose master is unreachable does not
   * hold up the others (see `ClusterTakes`).
   */
  async take(queues: readonly string[], options: TakeOptions): Promise<Delivery[]> {
    checkTakeArguments(queues, options);
    for (const q of queues) this.#rememberSoon(q);
    return await this.#takes.take(queues, options);
  }

  #byQueue<T>(items: readonly T[], queueOf: (t: T) => string): Map<RedisBroker, T[]> {
    const out = new Map<RedisBroker, T[]>();
    for (const item of items) {
      const s = this.#shard(queueOf(item));
      const list = out.get(s);
      if (list) list.push(item);
      else out.set(s, [item]);
    }
    return out;
  }

  /** Acknowledge deliveries (each in its queue's slot). */
  async ack(deliveries: readonly Delivery[]): Promise<void> {
    const groups = this.#byQueue(deliveries, (d) => d.queue);
    await Promise.all([...groups].map(([s, ds]) => s.ack(ds)));
  }

  /** Park deliveries in their queue's parking list; resolves with the rejections parked. */
  async reject(rejections: readonly Rejection[]): Promise<Rejection[]> {
    const groups = this.#byQueue(rejections, (r) => r.delivery.queue);
    const parked = await Promise.all([...groups].map(([s, rs]) => s.reject(rs)));
    return parked.flat();
  }

  /** Put deliveries back in front of their queues. */
  async requeue(deliveries: readonly Delivery[], options?: RequeueOptions): Promise<void> {
    const groups = this.#byQueue(deliveries, (d) => d.queue);
    await Promise.all([...groups].map(([s, ds]) => s.requeue(ds, options)));
  }

  /** Renew the visibility of live deliveries; resolves with those whose lease was gone. */
  async extend(deliveries: readonly Delivery[]): Promise<Delivery[]> {
    const groups = this.#byQueue(deliveries, (d) => d.queue);
    return (await Promise.all([...groups].map(([s, ds]) => s.extend(ds)))).flat();
  }

  /** Delete a queue's waiting messages. */
  purge(queue: string): Promise<number> {
    return this.#shard(queue).purge(queue);
  }

  /** Count a queue's waiting messages. */
  queueDepth(queue: string): Promise<number> {
    return this.#shard(queue).queueDepth(queue);
  }

  /** List parked messages of every queue this cluster carried, oldest first per queue. */
  async listParked(options: { limit?: number } = {}): Promise<ParkedMessage[]> {
    const limit = options.limit ?? 100;
    const out: ParkedMessage[] = [];
    for (const q of await this.#allQueues()) {
      if (out.length >= limit) break;
      for (const p of await this.#shard(q).listParked({ limit: limit - out.length })) out.push(p);
    }
    return out;
  }

  /** How many messages are parked, over every queue this cluster carried. */
  async countParked(): Promise<number> {
    let n = 0;
    for (const q of await this.#allQueues()) n += await this.#shard(q).countParked();
    return n;
  }

  /** Move parked messages back to their queues. */
  async requeueParked(options: { limit?: number } = {}): Promise<number> {
    const limit = options.limit ?? 1000;
    let moved = 0;
    for (const q of await this.#allQueues()) {
      if (moved >= limit) break;
      moved += await this.#shard(q).requeueParked({ limit: limit - moved });
    }
    return moved;
  }

  /** Broadcast (PUBLISH reaches every node of a cluster). */
  broadcast(exchange: string, message: Message, routingKey?: string): Promise<void> {
    return this.#global.broadcast(exchange, message, routingKey);
  }

  /** Receive broadcasts until `signal` aborts (replies: with a flush). */
  subscribe(
    exchange: string,
    onMessage: (message: Message) => void,
    options: SubscribeOptions,
  ): Promise<Subscription | void> {
    return this.#global.subscribe(exchange, onMessage, options);
  }

  /** Remember revoked ids (under `{celeriac}`). */
  addRevoked(entries: readonly RevokedEntry[]): Promise<void> {
    return this.#global.addRevoked(entries);
  }

  /** The revoked ids that have not expired. */
  listRevoked(): Promise<RevokedEntry[]> {
    return this.#global.listRevoked();
  }

  /** Rate-limit tokens (buckets under `{celeriac}`). */
  acquireTokens(requests: readonly TokenRequest[]): Promise<TokenGrant[]> {
    return this.#global.acquireTokens(requests);
  }

  /** Close every queue's transport and the cluster connection. */
  async close(): Promise<void> {
    await this.#takes.close();
    await Promise.all([this.#global, ...this.#shards.values()].map((s) => s.close()));
    await closeRedis(this.#client);
  }
}

/**
 * Open a Redis Cluster broker and check that the cluster answers.
 *
 * @example
 * ```ts
 * import { openRedisClusterBroker } from "@celeriac/celeriac/transports";
 * const broker = await openRedisClusterBroker("redis+cluster://10.0.0.1:7000,10.0.0.2:7000?visibility_timeout=300");
 * await broker.close();
 * ```
 *
 * @param url `redis+cluster://[:password@]host:port[,host:port...][/0][?visibility_timeout=...]`
 * @param options transport options
 * @returns the connected broker
 * @throws {BrokerConnectionError} when no node answers
 */
export async function openRedisClusterBroker(
  url: string,
  options: RedisBrokerOptions = {},
): Promise<RedisClusterBroker> {
  options.signal?.throwIfAborted();
  await prepareRedis(parseRedisUrl(url));
  const broker = new RedisClusterBroker(url, options);
  await unlessAborted(broker.connect(), options.signal, () => broker.close());
  return broker;
}
