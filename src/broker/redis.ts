/**
 * The Redis transport, wire-compatible with kombu 5.2's Redis transport:
 * the same list names (priority sub-lists `<queue>\x06\x16<n>`), LPUSH to
 * publish and pop from the right, base64 envelopes, `_kombu.binding.*` sets,
 * and the `unacked` / `unacked_index` / `unacked_mutex` visibility-timeout
 * bookkeeping, so Python and Celeriac workers restore each other's orphans.
 *
 * Unlike kombu, taking a batch and recording it as unacknowledged is one
 * atomic Lua script: there is no moment where a crash loses a message.
 * While a queue is empty the transport blocks on it with `BLMOVE` into a
 * claim list of its own (redis_claims.ts) on a dedicated connection per
 * list; the claimed message is handed out at once and recorded by the
 * script, which follows it (redis_early.ts). Requires Redis ≥ 6.2.
 *
 * This file holds the broker's options and the class that puts its parts
 * together: key names in redis_keys.ts, scripts in redis_scripts.ts and
 * redis_commands.ts, publishing in redis_publish.ts, taking in
 * redis_take.ts (waiting in redis_watchers.ts and redis_claims.ts),
 * settling in redis_settle.ts, the restore sweep in
 * redis_restore.ts, parking in redis_parked.ts, broadcasts in
 * redis_fanout.ts, counting and purging a queue in redis_queues.ts, the
 * revoked ids in redis_revoked.ts and rate-limit buckets in redis_tokens.ts. On a single server takes, acknowledgements and the
 * LPUSHes of publishes go through a connection of their own (resp_scripts.ts),
 * the rest through Celeriac's own client (resp_client.ts): ioredis is loaded
 * for Sentinel and Cluster URLs only (redis_connection.ts).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Message } from "../protocol/message.ts";
import type {
  Broker,
  Delivery,
  ParkedMessage,
  Publication,
  PublishManyOptions,
  PublishTarget,
  QueueBinding,
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
import { brokerClosed } from "./errors.ts";
import { defineScripts, type RedisScope } from "./redis_commands.ts";
import type { RedisClient } from "./redis_client.ts";
import { closeRedis, connectRedis, openRedisConnection, prepareRedis } from "./redis_connection.ts";
import { isConnectionFailure } from "./redis_failures.ts";
import { guardRedis } from "./redis_guard.ts";
import { broadcast, subscribe } from "./redis_fanout.ts";
import { countParked, listParked, requeueParked } from "./redis_parked.ts";
import { RedisPublisher } from "./redis_publish.ts";
import { purgeQueue, queueDepth } from "./redis_queues.ts";
import { restoreVisible } from "./redis_restore.ts";
import { addRevoked, listRevoked } from "./redis_revoked.ts";
import { RedisSettler } from "./redis_settle.ts";
import { RedisTaker } from "./redis_take.ts";
import { acquireTokens } from "./redis_tokens.ts";
import { isSingleServer, parseRedisUrl } from "./redis_url.ts";
import { RespEvents } from "./resp_events.ts";
import { RespScripts } from "./resp_scripts.ts";
import { CLOSE_WAIT_MS, closeWait, unlessAborted } from "./sleep.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/**
 * Options of {@link openRedisBroker}; URL query parameters of the same name override them.
 *
 * @example A broker sharing Redis with another app
 * ```ts
 * import { openRedisBroker, type RedisBrokerOptions } from "@celeriac/celeriac/transports";
 * const options: RedisBrokerOptions = {
 *   visibilityTimeout: 600, // redeliver unacknowledged messages after 10 minutes
 *   keyPrefix: "billing:", // as kombu's global_keyprefix
 *   restoreInterval: 30,
 * };
 * // ?visibility_timeout=… or ?global_keyprefix=… in the URL would win over these.
 * const connect = (url: string) => openRedisBroker(url, options);
 * ```
 */
export interface RedisBrokerOptions {
  /**
   * Seconds after which an unacknowledged message is given to another
   * consumer (kombu `visibility_timeout`). Default 3600.
   */
  visibilityTimeout?: number;
  /** Prefix for every key and channel (kombu `global_keyprefix`). Default `""`. */
  keyPrefix?: string;
  /**
   * Seconds between restore sweeps; default a quarter of the visibility
   * timeout, between 0.5 and 60.
   */
  restoreInterval?: number;
  /**
   * Seconds an acknowledgement, park or requeue is retried, with backoff,
   * while Redis is unreachable (the delivery stays unacknowledged
   * meanwhile). Default 300 (`DEFAULT_OUTAGE_LIMIT`).
   */
  outageRetryLimit?: number;
  /**
   * Aborts opening: what was opened is closed and the open rejects with
   * the signal's reason (at once, opening nothing, when it already
   * aborted). Default: none.
   */
  signal?: AbortSignal;
}

/**
 * Options key of a connection to use instead of opening one from the URL
 * (the Redis Cluster broker shares one per cluster); `close()` leaves it
 * open. Internal: not part of {@link RedisBrokerOptions}.
 */
export const SHARED_CONNECTION: unique symbol = Symbol("celeriac.redis.sharedConnection");

/**
 * A kombu-compatible Redis broker.
 *
 * @example
 * ```ts
 * import { openRedisBroker } from "@celeriac/celeriac/transports";
 * const broker = await openRedisBroker("redis://127.0.0.1:6379/0");
 * const [d] = await broker.take(["celery"], { max: 1, signal: AbortSignal.timeout(1000) });
 * if (d) await broker.ack([d]);
 * await broker.close();
 * ```
 */
export class RedisBroker implements Broker {
  /** Always `redis`. */
  readonly transport = "redis";
  /** Always true: every delivery's headers are checked as its envelope is decoded. */
  readonly headersChecked = true;
  readonly #rawUrl: string;
  readonly #client: RedisScope["client"];
  readonly #scope: RedisScope;
  readonly #ownsClient: boolean;
  readonly #visibility: number;
  readonly #restoreEvery: number;
  readonly #publisher: RedisPublisher;
  readonly #taker: RedisTaker;
  readonly #settler: RedisSettler;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #sweeping: Promise<unknown> | null = null;
  #closed = false;
  readonly #closing = new AbortController();
  /** Aborted once the connections are closed: settling steps still retrying give up. */
  readonly #released = new AbortController();

  /**
   * Use {@link openRedisBroker}.
   *
   * @param rawUrl the broker URL
   * @param options transport options
   */
  constructor(rawUrl: string, options: RedisBrokerOptions = {}) {
    this.#rawUrl = rawUrl;
    const url = parseRedisUrl(rawUrl);
    const q = url.query;
    const prefix = q.global_keyprefix ?? options.keyPrefix ?? "";
    this.#visibility = Number(q.visibility_timeout ?? options.visibilityTimeout ?? 3600);
    if (!(this.#visibility > 0)) {
      throw new RangeError(`visibility_timeout must be a positive number of seconds`);
    }
    this.#restoreEvery = options.restoreInterval ??
      Math.min(60, Math.max(0.5, this.#visibility / 4));
    const shared = (options as { [SHARED_CONNECTION]?: RedisClient })[SHARED_CONNECTION];
    this.#ownsClient = shared === undefined;
    this.#client = defineScripts(
      shared ?? openRedisConnection(url, rawUrl, {
        autoPipelining: true,
        name: "celeriac-broker",
      }),
    );
    const single = shared === undefined && isSingleServer(url);
    this.#scope = {
      client: this.#client,
      rawUrl,
      db: url.db,
      k: (key) => prefix + key,
      run: (fn, { signal, keys } = {}) =>
        guardRedis(
          rawUrl,
          fn,
          signal ? AbortSignal.any([signal, this.#released.signal]) : this.#released.signal,
          keys,
        ),
      events: single ? new RespEvents(url, rawUrl) : undefined,
      resp: single
        ? new RespScripts(url, rawUrl, { name: "celeriac-consume", role: "consume" })
        : undefined,
    };
    this.#publisher = new RedisPublisher(this.#scope);
    this.#taker = new RedisTaker(
      this.#scope,
      this.#closing.signal,
      (left) => this.#settler.requeue(left),
      options.outageRetryLimit,
    );
    this.#settler = new RedisSettler(this.#scope, this.#taker, {
      outageLimit: options.outageRetryLimit,
      closed: this.#released.signal,
    });
  }

  /**
   * Connect now (otherwise the first command connects), and on a single
   * server the connection of takes and acknowledgements too.
   */
  async connect(): Promise<void> {
    await connectRedis(this.#client, this.#rawUrl);
    try {
      await this.#scope.resp?.connect();
    } catch (err) {
      if (this.#ownsClient) this.#client.disconnect();
      throw err;
    }
  }

  /** Declare a queue as Celery does: bind exchange `<queue>` with key `<queue>`. */
  declareQueue(queue: string): Promise<void> {
    return this.#publisher.declareQueue(queue);
  }

  /**
   * Declare a queue and bind it to a named exchange: a member of
   * `_kombu.binding.<exchange>` (with kombu's pattern on a topic exchange).
   */
  bindQueue(queue: string, binding: QueueBinding): Promise<void> {
    return this.#publisher.bindQueue(queue, binding);
  }

  /** Publish (LPUSH) a message to the list of its queue and priority. */
  publish(message: Message, target: PublishTarget): Promise<void> {
    return this.#publisher.publish(message, target);
  }

  /**
   * Publish many messages: each target is routed once and each list gets
   * variadic LPUSHes of up to 1,000 messages (in the messages' order,
   * pipelined), so 1,000 tasks to one queue cost one command instead of
   * 1,000, and 100,000 cost 100.
   */
  publishMany(batch: readonly Publication[], options?: PublishManyOptions): Promise<void> {
    return this.#publisher.publishMany(batch, options);
  }

  /**
   * Take up to `max` messages atomically, waiting while the queues are
   * empty, and while Redis is unreachable (retrying every 100 ms until it is
   * back or `signal` aborts).
   *
   * @throws {BrokerConnectionError} (not transient) when the broker was closed
   */
  async take(queues: readonly string[], options: TakeOptions): Promise<Delivery[]> {
    checkTakeArguments(queues, options);
    if (this.#closed) throw brokerClosed(this.#rawUrl, "openRedisBroker()");
    this.#startSweeping();
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
    // A fractional max is rounded down, as the AMQP broker does (the take script needs an integer).
    return await this.#taker.take(queues, Math.floor(options.max), signal);
  }

  /**
   * Whether the last take found Redis unreachable and no take reached it
   * since (its take rides out the outage, retrying every 100 ms).
   *
   * @example
   * ```ts
   * import { openRedisBroker } from "@celeriac/celeriac/transports";
   * const broker = await openRedisBroker("redis://127.0.0.1:6379/0");
   * if (broker.unreachable) console.log("Redis is down: takes wait for it");
   * ```
   */
  get unreachable(): boolean {
    return this.#taker.unreachable;
  }

  /**
   * Stop waiting on a queue no longer consumed, putting back at its front
   * what a wait under way claims from it (within a second).
   */
  releaseQueue(queue: string): Promise<void> {
    return this.#taker.release([queue]);
  }

  /** Acknowledge: remove from `unacked` and `unacked_index` in one transaction. */
  ack(deliveries: readonly Delivery[]): Promise<void> {
    return this.#settler.ack(deliveries);
  }

  /**
   * Park deliveries in the `celeriac.parked` list with their reasons: each
   * as it was queued, read back from its `unacked` entry; one already
   * acknowledged (its entry gone) is parked re-encoded from what was decoded.
   *
   * @returns the rejections parked (one handed out early that its take did not record is left out)
   */
  reject(rejections: readonly Rejection[]): Promise<readonly Rejection[]> {
    return this.#settler.reject(rejections);
  }

  /** Put deliveries back at the front of their queues (kombu's restore, RPUSH). */
  requeue(deliveries: readonly Delivery[], options: RequeueOptions = {}): Promise<void> {
    return this.#settler.requeue(deliveries, undefined, options.consumerDied ?? false);
  }

  /** Delete every waiting message of a queue (all priority lists). */
  purge(queue: string): Promise<number> {
    return purgeQueue(this.#scope, queue);
  }

  /** Count waiting messages of a queue (all priority lists). */
  queueDepth(queue: string): Promise<number> {
    return queueDepth(this.#scope, queue);
  }

  /** List parked messages, oldest first. */
  listParked(options: { limit?: number } = {}): Promise<ParkedMessage[]> {
    return listParked(this.#scope, options.limit ?? 100);
  }

  /** How many messages are parked. */
  countParked(): Promise<number> {
    return countParked(this.#scope);
  }

  /** Move parked messages back to the end of their queues, marked redelivered. */
  requeueParked(options: { limit?: number } = {}): Promise<number> {
    return requeueParked(this.#scope, options.limit ?? 1000);
  }

  #startSweeping(): void {
    if (this.#sweepTimer !== undefined || this.#closed) return;
    this.#sweepTimer = setInterval(() => this.#sweep(), this.#restoreEvery * 1000);
    this.#sweep();
  }

  #sweep(): void {
    if (this.#sweeping || this.#closed) return;
    this.#sweeping = Promise.all([this.restoreVisible(), this.#taker.returnClaims(false)])
      .catch((err) =>
        // Redis being unreachable is told by the take loop (and through Sentinel by the master's
        // watch), not again in ioredis' words every sweep.
        isConnectionFailure(err)
          ? log.debug("Restore sweep failed: {error}", { error: (err as Error).message })
          : log.warn("Restore sweep failed: {error}", { error: (err as Error).message })
      )
      .finally(() => this.#sweeping = null);
  }

  /**
   * kombu's `restore_visible`: put back every message that has been
   * unacknowledged for longer than the visibility timeout, at the front of
   * its queue and marked redelivered. Guarded by `unacked_mutex` so that
   * Celeriac and Python workers never sweep at the same time; the lock
   * lives {@link RESTORE_LOCK_MS} and is renewed while this sweep runs, so
   * a consumer killed mid-sweep delays restores by seconds, not minutes.
   *
   * @returns how many messages were restored
   */
  restoreVisible(): Promise<number> {
    return restoreVisible(this.#scope, this.#visibility);
  }

  /** The visibility timeout in milliseconds. */
  get visibilityTimeout(): number {
    return this.#visibility * 1000;
  }

  /**
   * Renew leases: re-score still-unacknowledged tags in `unacked_index` with
   * the current time (`ZADD XX`, so acknowledged ones are not re-added),
   * which keeps kombu's and Celeriac's restore sweeps away from them.
   */
  extend(deliveries: readonly Delivery[]): Promise<Delivery[]> {
    return this.#settler.extend(deliveries);
  }

  /**
   * PUBLISH a kombu envelope on `/<db>.<exchange>`, or with a routing key on
   * `/<db>.<exchange>/<routing key>`, as kombu's fanout (with
   * `fanout_patterns`, Celery's default) does.
   */
  broadcast(exchange: string, message: Message, routingKey = ""): Promise<void> {
    return broadcast(this.#scope, exchange, message, routingKey);
  }

  /**
   * Subscribe to `/<db>.<exchange>` on a connection of its own, and bind the
   * subscriber's queue to the exchange as kombu does (so Python tools see it);
   * replies resolve with a {@link Subscription} (a fence pushed to their list).
   */
  subscribe(
    exchange: string,
    onMessage: (message: Message) => void,
    options: SubscribeOptions,
  ): Promise<Subscription | void> {
    return subscribe(this.#scope, exchange, onMessage, options);
  }

  /** Add revoked ids to the `celeriac.revoked` sorted set, dropping expired ones. */
  addRevoked(entries: readonly RevokedEntry[]): Promise<void> {
    return addRevoked(this.#scope, entries);
  }

  /** The revoked ids that have not expired. */
  listRevoked(): Promise<RevokedEntry[]> {
    return listRevoked(this.#scope);
  }

  /**
   * Take rate-limit tokens from buckets shared by every worker on this
   * Redis (hashes `celeriac.ratelimit.<key>`), in one atomic script call
   * timed by the Redis server's clock.
   */
  acquireTokens(requests: readonly TokenRequest[]): Promise<TokenGrant[]> {
    return acquireTokens(this.#scope, requests);
  }

  /**
   * Close all connections. Unsettled deliveries come back after the
   * visibility timeout. Each last step (a restore sweep under way, putting
   * back what was taken and not handed out, returning claims, the take
   * record's `DEL`, `QUIT`) is waited for at most `CLOSE_WAIT_MS`, then
   * the connections are dropped: what a server that stopped answering did
   * not put back stays unacknowledged, and comes back after the visibility
   * timeout.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    clearInterval(this.#sweepTimer);
    // A sweep under way is waited for CLOSE_WAIT_MS at most: a server that stopped answering.
    if (this.#sweeping) await closeWait(this.#sweeping);
    // Taken (recorded in `unacked`) but not handed out: back to their queues now, not after
    // the visibility timeout (retried while Redis is unreachable for CLOSE_WAIT_MS only).
    const left = await this.#taker.leftOver();
    if (left.length > 0) {
      await closeWait(
        this.#settler.requeue(left, CLOSE_WAIT_MS / 1000).catch((err) =>
          log.warn(
            "Could not put back {n} taken message(s) ({error}); they come back after the " +
              "visibility timeout",
            { n: left.length, error: (err as Error).message },
          )
        ),
      );
    }
    await this.#taker.close();
    await this.#scope.events?.close();
    await this.#scope.resp?.close();
    if (this.#ownsClient) await closeRedis(this.#client);
    this.#released.abort();
  }
}

/**
 * Open a Redis broker and check that the server answers.
 *
 * @example
 * ```ts
 * import { openRedisBroker } from "@celeriac/celeriac/transports";
 * const broker = await openRedisBroker("redis://127.0.0.1:6379/0?visibility_timeout=600");
 * await broker.close();
 * ```
 *
 * @param url `redis://[:password@]host:port/db?visibility_timeout=...&global_keyprefix=...`
 * @param options transport options
 * @returns the connected broker
 * @throws {BrokerConnectionError} when the server cannot be reached
 */
export async function openRedisBroker(
  url: string,
  options: RedisBrokerOptions = {},
): Promise<RedisBroker> {
  options.signal?.throwIfAborted();
  await prepareRedis(parseRedisUrl(url));
  const broker = new RedisBroker(url, options);
  await unlessAborted(broker.connect(), options.signal, () => broker.close());
  return broker;
}
