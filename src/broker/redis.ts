/**
 * The Redis transport, wire-compatible with kombu 5.2's Redis transport:
 * the same list names (priority sub-lists `<queue>\x06\x16<n>`), LPUSH to
 * publish and pop from the right, base64 envelopes, `_kombu.binding.*` sets,
 * and the `unacked` / `unacked_index` / `unacked_mutex` visibility-timeout
 * bookkeeping, so Python and Celeriac workers restore each other's orphans.
 *
 * Unlike kombu, taking a batch and recording it as unacknowledged is one
 * atomic Lua script: there is no moment where a crash loses a message.
 * While a queue is empty the transport blocks on it with
 * `BLMOVE key key LEFT LEFT` (a non-destructive wait) on a dedicated
 * connection per list, then takes with the script. Requires Redis ≥ 6.2.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Redis } from "ioredis";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../protocol/envelope.ts";
import { PIDBOX_REPLY_EXCHANGE } from "../protocol/control.ts";
import { pyJsonDumps, pyJsonLoads } from "../protocol/json.ts";
import type { Message } from "../protocol/message.ts";
import type {
  Broker,
  Delivery,
  ParkedMessage,
  Publication,
  PublishTarget,
  Rejection,
  RevokedEntry,
  SubscribeOptions,
  TakeOptions,
  TokenGrant,
  TokenRequest,
} from "./port.ts";
import { BrokerConnectionError } from "./errors.ts";
import { DELIVERY_COUNT_HEADER } from "./port.ts";
import {
  closeRedis,
  connectRedis,
  duplicateRedis,
  guardRedis,
  openRedisConnection,
  redisFailure,
} from "./redis_connection.ts";
import { retryWhileDown } from "./outage.ts";
import {
  CLAIM_LEASE_SECONDS,
  claimedList,
  claimList,
  CLAIMS_KEY,
  ClaimWatcher,
  RETURN_CLAIM_SCRIPT,
} from "./redis_claims.ts";
import {
  PARK_SCRIPT,
  RENEW_SCRIPT,
  RESTORE_SCRIPT,
  TAKE_SCRIPT,
  TOKENS_SCRIPT,
  UNLOCK_SCRIPT,
  UNPARK_SCRIPT,
} from "./redis_scripts.ts";
import { parseRedisUrl, type RedisUrlOptions } from "./redis_url.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/**
 * kombu's separator between a queue name and its priority step.
 *
 * @example The list of a priority step
 * ```ts
 * import { PRIORITY_SEP, priorityList } from "@celeriac/celeriac/transports";
 * priorityList("celery", 6) === `celery${PRIORITY_SEP}6`; // true
 * PRIORITY_SEP; // "\x06\x16"
 * ```
 */
export const PRIORITY_SEP = "\x06\x16";
/**
 * kombu's default priority steps.
 *
 * @example Every Redis list of a queue
 * ```ts
 * import { PRIORITY_STEPS, priorityList } from "@celeriac/celeriac/transports";
 * const lists = PRIORITY_STEPS.map((step) => priorityList("celery", step));
 * // ["celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169"], most urgent first
 * ```
 */
export const PRIORITY_STEPS: readonly number[] = [0, 3, 6, 9];
/**
 * Name of the list holding parked (dead-lettered) messages.
 *
 * @example Finding parked messages in Redis
 * ```ts
 * import { PARKED_KEY } from "@celeriac/celeriac/transports";
 * const keyPrefix = "billing:"; // the broker's keyPrefix (kombu global_keyprefix), if any
 * const parkedList = keyPrefix + PARKED_KEY; // "billing:celeriac.parked"
 * // redis-cli LRANGE billing:celeriac.parked 0 -1
 * ```
 */
export const PARKED_KEY = "celeriac.parked";

/**
 * Name of the sorted set of revoked task ids, scored by expiry (unix seconds).
 *
 * @example Listing revocations with redis-cli
 * ```ts
 * import { REVOKED_KEY } from "@celeriac/celeriac/transports";
 * REVOKED_KEY; // "celeriac.revoked"
 * // redis-cli ZRANGE celeriac.revoked 0 -1 WITHSCORES
 * ```
 */
export const REVOKED_KEY = "celeriac.revoked";

/**
 * Prefix of the hashes holding rate-limit token buckets, one per task name.
 *
 * @example Inspecting a task's bucket with redis-cli
 * ```ts
 * import { RATE_LIMIT_KEY_PREFIX } from "@celeriac/celeriac/transports";
 * RATE_LIMIT_KEY_PREFIX + "tasks.scrape"; // "celeriac.ratelimit.tasks.scrape"
 * // redis-cli HGETALL celeriac.ratelimit.tasks.scrape
 * ```
 */
export const RATE_LIMIT_KEY_PREFIX = "celeriac.ratelimit.";

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
}

/**
 * How long the restore lock (`unacked_mutex`) lives without renewal, in
 * milliseconds. A sweeping consumer renews it every third of that, so a
 * consumer killed mid-sweep holds restores up for at most this long
 * (kombu sets it for 300 s and never renews it).
 *
 * @example
 * ```ts
 * import { RESTORE_LOCK_MS } from "@celeriac/celeriac/transports";
 * RESTORE_LOCK_MS; // 5000
 * ```
 */
export const RESTORE_LOCK_MS = 5000;

/**
 * Options key of a connection to use instead of opening one from the URL
 * (the Redis Cluster broker shares one per cluster); `close()` leaves it
 * open. Internal: not part of {@link RedisBrokerOptions}.
 */
export const SHARED_CONNECTION: unique symbol = Symbol("celeriac.redis.sharedConnection");

interface Scripted {
  celeriacTake(numKeys: number, ...args: string[]): Promise<string[]>;
  celeriacRestore(...args: string[]): Promise<number>;
  celeriacPark(...args: string[]): Promise<number>;
  celeriacUnpark(...args: string[]): Promise<number>;
  celeriacUnlock(...args: string[]): Promise<number>;
  celeriacRenew(...args: string[]): Promise<number>;
  celeriacTokens(numKeys: number, ...args: string[]): Promise<number[]>;
  celeriacReturnClaim(...args: string[]): Promise<number>;
}

/**
 * The list a message of `priority` goes to (kombu's priority quantisation:
 * 0-2 → `queue`, 3-5 → `queue\x06\x163`, 6-8 → `...6`, 9 → `...9`).
 *
 * @example
 * ```ts
 * import { priorityList } from "@celeriac/celeriac/transports";
 * priorityList("celery", 5); // "celery\x06\x163"
 * ```
 *
 * @param queue queue name
 * @param priority message priority
 * @returns the list key (without prefix)
 */
export function priorityList(queue: string, priority: unknown): string {
  const p = Math.min(9, Math.max(0, Math.trunc(Number(priority)) || 0));
  let step = 0;
  for (const s of PRIORITY_STEPS) if (s <= p) step = s;
  return step === 0 ? queue : queue + PRIORITY_SEP + step;
}

function queueOfList(list: string): string {
  const i = list.lastIndexOf(PRIORITY_SEP);
  return i < 0 ? list : list.slice(0, i);
}

/** How often a take retries while Redis is unreachable, in milliseconds. */
const RECONNECT_POLL_MS = 100;

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * A kombu-compatible Redis broker.
 *
 * @example
 * ```ts ignore
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
  readonly #url: RedisUrlOptions;
  readonly #rawUrl: string;
  readonly #client: Redis & Scripted;
  readonly #ownsClient: boolean;
  readonly #prefix: string;
  readonly #visibility: number;
  readonly #restoreEvery: number;
  readonly #watchers = new Map<string, ClaimWatcher>();
  /** This broker's id in its claim lists (see redis_claims.ts). */
  readonly #id = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
  readonly #raw = new WeakMap<Delivery, string>();
  readonly #declared = new Set<string>();
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #sweeping: Promise<unknown> | null = null;
  #rotation = 0;
  readonly #outageLimit: number | undefined;
  /** This consumer's take record and the sequence id of its next take. */
  readonly #takeRecord = `celeriac.take.${crypto.randomUUID()}`;
  #takeSeq = 0;
  /** Lists of a take whose reply was lost: the next take repeats it with the same id. */
  #unsureTake: { lists: string[]; seq: number } | null = null;
  #closed = false;
  readonly #closing = new AbortController();

  /**
   * Use {@link openRedisBroker}.
   *
   * @param rawUrl the broker URL
   * @param options transport options
   */
  constructor(rawUrl: string, options: RedisBrokerOptions = {}) {
    this.#rawUrl = rawUrl;
    this.#url = parseRedisUrl(rawUrl);
    const q = this.#url.query;
    this.#prefix = q.global_keyprefix ?? options.keyPrefix ?? "";
    this.#visibility = Number(q.visibility_timeout ?? options.visibilityTimeout ?? 3600);
    if (!(this.#visibility > 0)) {
      throw new RangeError(`visibility_timeout must be a positive number of seconds`);
    }
    this.#outageLimit = options.outageRetryLimit;
    this.#restoreEvery = options.restoreInterval ??
      Math.min(60, Math.max(0.5, this.#visibility / 4));
    const shared = (options as { [SHARED_CONNECTION]?: Redis })[SHARED_CONNECTION];
    this.#ownsClient = shared === undefined;
    this.#client = (shared ?? openRedisConnection(this.#url, rawUrl, {
      autoPipelining: true,
      name: "celeriac-broker",
    })) as Redis & Scripted;
    this.#client.defineCommand("celeriacTake", { lua: TAKE_SCRIPT });
    this.#client.defineCommand("celeriacRestore", { lua: RESTORE_SCRIPT, numberOfKeys: 3 });
    this.#client.defineCommand("celeriacPark", { lua: PARK_SCRIPT, numberOfKeys: 3 });
    this.#client.defineCommand("celeriacUnpark", { lua: UNPARK_SCRIPT, numberOfKeys: 2 });
    this.#client.defineCommand("celeriacUnlock", { lua: UNLOCK_SCRIPT, numberOfKeys: 1 });
    this.#client.defineCommand("celeriacRenew", { lua: RENEW_SCRIPT, numberOfKeys: 1 });
    this.#client.defineCommand("celeriacTokens", { lua: TOKENS_SCRIPT });
    this.#client.defineCommand("celeriacReturnClaim", {
      lua: RETURN_CLAIM_SCRIPT,
      numberOfKeys: 3,
    });
  }

  /** Connect now (otherwise the first command connects). */
  connect(): Promise<void> {
    return connectRedis(this.#client, this.#rawUrl);
  }

  #k(key: string): string {
    return this.#prefix + key;
  }

  #run<T>(fn: () => Promise<T>): Promise<T> {
    return guardRedis(this.#rawUrl, fn);
  }

  /** Run a settlement step, retrying while Redis is unreachable. */
  #settle<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retryWhileDown(() => this.#run(fn), { limit: this.#outageLimit, what });
  }

  /** Declare a queue as Celery does: bind exchange `<queue>` with key `<queue>`. */
  async declareQueue(queue: string): Promise<void> {
    if (this.#declared.has(queue)) return;
    await this.#run(() =>
      this.#client.sadd(
        this.#k(`_kombu.binding.${queue}`),
        queue + PRIORITY_SEP + PRIORITY_SEP + queue,
      )
    );
    this.#declared.add(queue);
  }

  async #route(exchange: string, routingKey: string): Promise<string[]> {
    if (exchange === "") return [routingKey];
    const members = await this.#client.smembers(this.#k(`_kombu.binding.${exchange}`));
    const out: string[] = [];
    for (const m of members) {
      const [rk, pattern, queue] = m.split(PRIORITY_SEP);
      if (pattern ? new RegExp(pattern).test(routingKey) : rk === routingKey) out.push(queue);
    }
    return out;
  }

  /** Publish (LPUSH) a message to the list of its queue and priority. */
  async publish(message: Message, target: PublishTarget): Promise<void> {
    const exchange = target.exchange ?? "";
    if (exchange === "") await this.declareQueue(target.routingKey);
    const raw = encodeEnvelope(
      message,
      { exchange, routing_key: target.routingKey },
      crypto.randomUUID(),
    );
    const queues = await this.#run(() => this.#route(exchange, target.routingKey));
    if (queues.length === 0) {
      log.warn("No queue is bound to exchange {exchange} with key {key}: message dropped", {
        exchange,
        key: target.routingKey,
      });
      return;
    }
    await this.#run(() =>
      Promise.all(
        queues.map((q) =>
          this.#client.lpush(this.#k(priorityList(q, message.properties.priority)), raw)
        ),
      )
    );
  }

  /**
   * Publish many messages: each target is routed once and each list gets one
   * variadic LPUSH (in the messages' order), so 1,000 tasks to one queue
   * cost one command instead of 1,000.
   */
  async publishMany(batch: readonly Publication[]): Promise<void> {
    const lists = new Map<string, string[]>();
    const routes = new Map<string, Promise<string[]>>();
    for (const { message, target } of batch) {
      const exchange = target.exchange ?? "";
      if (exchange === "") await this.declareQueue(target.routingKey);
      const key = `${exchange}\u0000${target.routingKey}`;
      if (!routes.has(key)) {
        routes.set(key, this.#run(() => this.#route(exchange, target.routingKey)));
      }
      const queues = await routes.get(key)!;
      if (queues.length === 0) {
        log.warn("No queue is bound to exchange {exchange} with key {key}: message dropped", {
          exchange,
          key: target.routingKey,
        });
        continue;
      }
      const raw = encodeEnvelope(
        message,
        { exchange, routing_key: target.routingKey },
        crypto.randomUUID(),
      );
      for (const q of queues) {
        const list = this.#k(priorityList(q, message.properties.priority));
        lists.get(list)?.push(raw) ?? lists.set(list, [raw]);
      }
    }
    await this.#run(() =>
      Promise.all([...lists].map(([list, raws]) => this.#client.lpush(list, ...raws)))
    );
  }

  #listKeys(queues: readonly string[]): string[] {
    const keys: string[] = [];
    const n = queues.length;
    for (const step of PRIORITY_STEPS) {
      for (let i = 0; i < n; i++) {
        const q = queues[(i + this.#rotation) % n];
        keys.push(step === 0 ? q : q + PRIORITY_SEP + step);
      }
    }
    return keys;
  }

  /**
   * Take up to `max` messages atomically, waiting while the queues are
   * empty, and while Redis is unreachable (retrying every 100 ms until it is
   * back or `signal` aborts).
   */
  async take(queues: readonly string[], options: TakeOptions): Promise<Delivery[]> {
    if (queues.length === 0) throw new TypeError("take() needs at least one queue");
    if (!(options.max >= 1)) throw new RangeError("take() needs max >= 1");
    this.#startSweeping();
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
    let down = 0;
    while (!signal.aborted) {
      const lists = this.#unsureTake?.lists ?? this.#listKeys(queues);
      let got: Delivery[];
      try {
        got = await this.#takeNow(lists, options.max);
      } catch (err) {
        if (!(err instanceof BrokerConnectionError)) throw err;
        // Ride out the outage here, as the AMQP transport does: retry soon after Redis is back.
        if (down === 0) {
          down = Date.now();
          log.warn("Redis is unreachable ({error}); taking again as soon as it is back", {
            error: err.message,
          });
        }
        await abortableSleep(RECONNECT_POLL_MS, signal);
        continue;
      }
      if (down !== 0) {
        log.info("Redis is back after {seconds} s: taking again", {
          seconds: ((Date.now() - down) / 1000).toFixed(1),
        });
        down = 0;
      }
      if (got.length > 0) {
        this.#rotation++;
        return got;
      }
      await this.#waitAny(lists, signal);
    }
    return [];
  }

  /**
   * Take with the script. When the reply does not arrive (a disconnect), the
   * script may have run: the next take repeats this one with the same id
   * and lists, and the script hands over what it recorded instead of
   * taking again, so nothing waits in `unacked` for the visibility timeout.
   */
  async #takeNow(lists: string[], max: number): Promise<Delivery[]> {
    // Messages this broker claimed while waiting come first (they were sent first).
    const sources = [...lists, ...lists];
    const keys = [
      ...lists.map((l) => this.#k(claimList(this.#id, l))),
      ...lists.map((l) => this.#k(l)),
      this.#k("unacked_index"),
      this.#k("unacked"),
      this.#k(PARKED_KEY),
      this.#k(this.#takeRecord),
    ];
    // A take repeating one whose reply was lost uses that take's id; takes never share one.
    const seq = this.#unsureTake?.seq ?? ++this.#takeSeq;
    let flat: string[];
    try {
      flat = await this.#run(() =>
        this.#client.celeriacTake(keys.length, ...keys, String(max), String(seq))
      );
    } catch (err) {
      this.#unsureTake = { lists, seq };
      throw err;
    }
    if (this.#unsureTake !== null && flat.length > 0) {
      log.info("Reconciled a take whose reply was lost: {n} message(s) handed over", {
        n: flat.length / 3,
      });
    }
    this.#unsureTake = null;
    const out: Delivery[] = [];
    for (let i = 0; i < flat.length; i += 3) {
      const pos = Number(flat[i]);
      const tag = flat[i + 1];
      const raw = flat[i + 2];
      const list = sources[Math.abs(pos) - 1];
      if (pos < 0) {
        log.error("Parked a malformed message from {list}: not a kombu envelope ({sample})", {
          list,
          sample: raw.slice(0, 200),
        });
        continue;
      }
      let env: Envelope;
      try {
        env = decodeEnvelope(raw);
      } catch (err) {
        await this.#parkRaw(
          tag,
          raw,
          queueOfList(list),
          `malformed message: ${(err as Error).message}`,
        );
        continue;
      }
      const d: Delivery = {
        body: env.body,
        contentType: env.contentType,
        contentEncoding: env.contentEncoding,
        headers: env.headers,
        properties: env.properties,
        queue: queueOfList(list),
        deliveryTag: tag,
        redelivered: env.redelivered,
        exchange: env.deliveryInfo.exchange,
        routingKey: env.deliveryInfo.routing_key,
        ...(env.undecodable === undefined ? {} : { undecodable: env.undecodable }),
      };
      this.#raw.set(d, raw);
      out.push(d);
    }
    return out;
  }

  async #waitAny(lists: string[], signal: AbortSignal): Promise<void> {
    const waits = lists.map((l) => this.#watcher(l).wait());
    const { promise: aborted, resolve } = Promise.withResolvers<boolean>();
    const onAbort = () => resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await Promise.race([...waits, aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  #watcher(list: string): ClaimWatcher {
    let w = this.#watchers.get(list);
    if (!w) {
      const conn = duplicateRedis(this.#client, this.#rawUrl, "celeriac-watch");
      conn.on("error", () => {});
      const member = claimList(this.#id, list);
      w = new ClaimWatcher(
        conn,
        this.#k(list),
        this.#k(member),
        () => this.#client.zadd(this.#k(CLAIMS_KEY), Date.now() / 1000, member),
      );
      this.#watchers.set(list, w);
    }
    return w;
  }

  /**
   * Put claims back at the front of their queues: this broker's own (on
   * close), or every claim not renewed for {@link CLAIM_LEASE_SECONDS}.
   */
  async #returnClaims(own: boolean): Promise<number> {
    const members = own
      ? [...this.#watchers.keys()].map((l) => claimList(this.#id, l))
      : await this.#client.zrangebyscore(
        this.#k(CLAIMS_KEY),
        "-inf",
        Date.now() / 1000 - CLAIM_LEASE_SECONDS,
      );
    let moved = 0;
    for (const member of members) {
      const list = claimedList(member);
      if (list === null) continue;
      moved += await this.#client.celeriacReturnClaim(
        this.#k(member),
        this.#k(list),
        this.#k(CLAIMS_KEY),
        member,
      );
    }
    if (moved > 0) log.info("Returned {n} claimed message(s) to their queues", { n: moved });
    return moved;
  }

  /** Acknowledge: remove from `unacked` and `unacked_index` in one transaction. */
  async ack(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    const tags = deliveries.map((d) => d.deliveryTag);
    await this.#settle(`acknowledge ${tags.length} message(s)`, () =>
      this.#client.multi()
        .zrem(this.#k("unacked_index"), ...tags)
        .hdel(this.#k("unacked"), ...tags)
        .exec());
  }

  #parkEntry(
    raw: string,
    queue: string,
    reason: string,
    taskId: string | null,
    taskName: string | null,
  ): string {
    return pyJsonDumps({
      reason,
      queue,
      task_id: taskId,
      task_name: taskName,
      parked_at: Date.now() / 1000,
      message: raw,
    });
  }

  async #parkRaw(tag: string, raw: string, queue: string, reason: string): Promise<void> {
    log.error("Parked a message from {queue}: {reason}", { queue, reason });
    await this.#park(tag, this.#parkEntry(raw, queue, reason, null, null));
  }

  /**
   * Move an unacknowledged message to the parked list; one that is no longer
   * unacknowledged (acked already, or without a tag) is parked all the same.
   */
  async #park(tag: string, entry: string): Promise<void> {
    const moved = tag
      ? await this.#client.celeriacPark(
        this.#k("unacked_index"),
        this.#k("unacked"),
        this.#k(PARKED_KEY),
        tag,
        entry,
      )
      : 0;
    if (!moved) await this.#client.lpush(this.#k(PARKED_KEY), entry);
  }

  /** Park deliveries in the `celeriac.parked` list with their reasons. */
  async reject(rejections: readonly Rejection[]): Promise<void> {
    await this.#settle(
      `park ${rejections.length} message(s)`,
      () =>
        Promise.all(rejections.map((r) => {
          const raw = this.#raw.get(r.delivery) ??
            encodeEnvelope(
              r.delivery,
              { exchange: r.delivery.exchange, routing_key: r.delivery.routingKey },
              r.delivery.deliveryTag,
            );
          const entry = this.#parkEntry(
            raw,
            r.delivery.queue,
            r.reason,
            r.taskId ?? null,
            r.taskName ?? null,
          );
          return this.#park(r.delivery.deliveryTag, entry);
        })),
    );
  }

  /** Put deliveries back at the front of their queues (kombu's restore, RPUSH). */
  async requeue(deliveries: readonly Delivery[]): Promise<void> {
    await this.#settle(
      `requeue ${deliveries.length} message(s)`,
      () =>
        Promise.all(deliveries.map((d) => {
          const raw = encodeEnvelope(
            d,
            { exchange: d.exchange, routing_key: d.routingKey },
            d.deliveryTag,
            true,
          );
          return this.#client.celeriacRestore(
            this.#k("unacked_index"),
            this.#k("unacked"),
            this.#k(priorityList(d.queue, d.properties.priority)),
            d.deliveryTag,
            "",
            raw,
            "front",
          );
        })),
    );
  }

  /** Delete every waiting message of a queue (all priority lists). */
  async purge(queue: string): Promise<number> {
    const lists = PRIORITY_STEPS.map((s) => this.#k(priorityList(queue, s)));
    const tx = this.#client.multi();
    for (const l of lists) tx.llen(l);
    tx.del(...lists);
    const res = await this.#run(() => tx.exec());
    return (res ?? []).slice(0, lists.length).reduce((n, [, v]) => n + Number(v), 0);
  }

  /** Count waiting messages of a queue (all priority lists). */
  async queueDepth(queue: string): Promise<number> {
    const counts = await this.#run(() =>
      Promise.all(PRIORITY_STEPS.map((s) => this.#client.llen(this.#k(priorityList(queue, s)))))
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** List parked messages, oldest first. */
  async listParked(options: { limit?: number } = {}): Promise<ParkedMessage[]> {
    const limit = options.limit ?? 100;
    const raw = await this.#run(() => this.#client.lrange(this.#k(PARKED_KEY), -limit, -1));
    return raw.reverse().map((entry) => this.#readParked(entry).parked);
  }

  /** Read a parked entry: what operators see, and the original message text. */
  #readParked(entry: string): { parked: ParkedMessage; message: string } {
    let e: Record<string, unknown> = {};
    try {
      e = pyJsonLoads(entry) as Record<string, unknown>;
    } catch {
      e = { reason: "unreadable parked entry" };
    }
    const msg = typeof e.message === "string" ? e.message : "";
    const fromMsg = (field: string) =>
      new RegExp(`"${field}": "([^"\\\\]+)"`).exec(msg)?.[1] ?? null;
    const parkedAt = typeof e.parked_at === "number" ? e.parked_at : 0;
    const parked: ParkedMessage = {
      id: `${parkedAt}:${(typeof e.task_id === "string" && e.task_id) || fromMsg("delivery_tag")}`,
      reason: String(e.reason ?? ""),
      queue: typeof e.queue === "string" ? e.queue : queueOfList(String(e.list ?? "")),
      taskId: typeof e.task_id === "string" ? e.task_id : fromMsg("id"),
      taskName: typeof e.task_name === "string" ? e.task_name : fromMsg("task"),
      parkedAt: new Date(parkedAt * 1000),
    };
    return { parked, message: msg };
  }

  /** Move parked messages back to the end of their queues, marked redelivered. */
  async requeueParked(options: { limit?: number } = {}): Promise<number> {
    const limit = options.limit ?? 1000;
    const entries = await this.#run(() => this.#client.lrange(this.#k(PARKED_KEY), -limit, -1));
    let moved = 0;
    for (const entry of entries.reverse()) {
      const { parked, message } = this.#readParked(entry);
      let env: Envelope;
      try {
        env = decodeEnvelope(message);
      } catch {
        log.warn("Parked message {id} cannot be decoded; it stays parked", { id: parked.id });
        continue;
      }
      const raw = encodeEnvelope(
        env,
        env.deliveryInfo,
        env.deliveryTag || crypto.randomUUID(),
        true,
      );
      const list = priorityList(parked.queue, env.properties.priority);
      moved += await this.#run(() =>
        this.#client.celeriacUnpark(this.#k(PARKED_KEY), this.#k(list), entry, raw)
      );
    }
    return moved;
  }

  #startSweeping(): void {
    if (this.#sweepTimer !== undefined || this.#closed) return;
    this.#sweepTimer = setInterval(() => this.#sweep(), this.#restoreEvery * 1000);
    this.#sweep();
  }

  #sweep(): void {
    if (this.#sweeping || this.#closed) return;
    this.#sweeping = Promise.all([this.restoreVisible(), this.#returnClaims(false)])
      .catch((err) => log.warn("Restore sweep failed: {error}", { error: (err as Error).message }))
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
  async restoreVisible(): Promise<number> {
    const token = crypto.randomUUID().replaceAll("-", "");
    const mutex = this.#k("unacked_mutex");
    const got = await this.#client.set(mutex, token, "PX", RESTORE_LOCK_MS, "NX");
    if (got !== "OK") return 0;
    let restored = 0;
    const renew = setInterval(() => {
      this.#client.celeriacRenew(mutex, token, String(RESTORE_LOCK_MS)).catch(() => {});
    }, RESTORE_LOCK_MS / 3);
    try {
      const ceiling = Date.now() / 1000 - this.#visibility;
      const tags = await this.#client.zrevrangebyscore(this.#k("unacked_index"), ceiling, 0);
      for (const tag of tags) restored += await this.#restoreOne(tag);
    } finally {
      clearInterval(renew);
      await this.#client.celeriacUnlock(mutex, token);
    }
    if (restored > 0) log.info("Restored {n} unacknowledged message(s)", { n: restored });
    return restored;
  }

  async #restoreOne(tag: string): Promise<number> {
    const value = await this.#client.hget(this.#k("unacked"), tag);
    if (value === null) {
      await this.#client.zrem(this.#k("unacked_index"), tag);
      return 0;
    }
    let env: Envelope;
    let exchange: string;
    let routingKey: string;
    try {
      const [rawEnv, ex, rk] = pyJsonLoads(value) as [unknown, string, string];
      env = decodeEnvelope(pyJsonDumps(rawEnv));
      exchange = String(ex ?? "");
      routingKey = String(rk ?? "");
      if (env.undecodable !== undefined) throw new Error(env.undecodable);
    } catch (err) {
      await this.#parkRaw(tag, value, "", `unreadable unacked entry: ${(err as Error).message}`);
      return 0;
    }
    const queues = await this.#route(exchange, routingKey);
    const restores = Number(env.headers[DELIVERY_COUNT_HEADER]) || 0;
    env.headers = { ...env.headers, [DELIVERY_COUNT_HEADER]: restores + 1 };
    const raw = encodeEnvelope(env, env.deliveryInfo, tag, true);
    let moved = 0;
    for (const q of queues.length ? queues : [routingKey]) {
      moved = Math.max(
        moved,
        await this.#client.celeriacRestore(
          this.#k("unacked_index"),
          this.#k("unacked"),
          this.#k(priorityList(q, env.properties.priority)),
          tag,
          value,
          raw,
          "front",
        ),
      );
    }
    return moved;
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
  async extend(deliveries: readonly Delivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    const now = String(Date.now() / 1000);
    const args = deliveries.flatMap((d) => [now, d.deliveryTag]);
    await this.#run(() => this.#client.zadd(this.#k("unacked_index"), "XX", ...args));
  }

  #fanoutChannel(exchange: string): string {
    return this.#k(`/${this.#url.db}.${exchange}`);
  }

  /**
   * PUBLISH a kombu envelope on `/<db>.<exchange>`, or with a routing key on
   * `/<db>.<exchange>/<routing key>`, as kombu's fanout (with
   * `fanout_patterns`, Celery's default) does.
   */
  async broadcast(exchange: string, message: Message, routingKey = ""): Promise<void> {
    const raw = encodeEnvelope(message, { exchange, routing_key: routingKey }, crypto.randomUUID());
    const channel = this.#fanoutChannel(exchange) + (routingKey ? `/${routingKey}` : "");
    await this.#run(() => this.#client.publish(channel, raw));
  }

  /**
   * Subscribe to `/<db>.<exchange>` on a connection of its own, and bind the
   * subscriber's queue to the exchange as kombu does (so Python tools see it).
   */
  async subscribe(
    exchange: string,
    onMessage: (message: Message) => void,
    options: SubscribeOptions,
  ): Promise<void> {
    if (exchange === PIDBOX_REPLY_EXCHANGE) return this.#subscribeReplies(onMessage, options);
    const key = options.bindingKey ?? "";
    const channel = this.#fanoutChannel(exchange) + (key ? `/${key.replaceAll("#", "*")}` : "");
    const binding = options.queue ? key + PRIORITY_SEP + PRIORITY_SEP + options.queue : null;
    const conn = duplicateRedis(this.#client, this.#rawUrl, "celeriac-fanout");
    conn.on(
      "error",
      (err: Error) => log.debug("Fanout connection: {error}", { error: err.message }),
    );
    conn.on("pmessage", (_pattern: string, _channel: string, raw: string) => {
      let env: Envelope;
      try {
        env = decodeEnvelope(raw);
      } catch (err) {
        log.error("Ignored a malformed broadcast on {channel}: {error}", {
          channel,
          error: (err as Error).message,
        });
        return;
      }
      onMessage(env);
    });
    const stop = async () => {
      if (binding) {
        await this.#client.srem(this.#k(`_kombu.binding.${exchange}`), binding).catch(() => {});
      }
      conn.disconnect();
    };
    if (options.signal.aborted) return await stop();
    try {
      await this.#run(async () => {
        if (binding) await this.#client.sadd(this.#k(`_kombu.binding.${exchange}`), binding);
        await conn.psubscribe(channel);
      });
    } catch (err) {
      conn.disconnect();
      throw redisFailure(conn, this.#rawUrl, err);
    }
    options.signal.addEventListener("abort", () => void stop(), { once: true });
  }

  /**
   * Replies on the direct exchange `reply.celery.pidbox`: bind the reply
   * list to the routing key (SADD, as kombu does) and pop it until `signal`
   * aborts; then unbind and delete it.
   */
  async #subscribeReplies(
    onMessage: (message: Message) => void,
    options: SubscribeOptions,
  ): Promise<void> {
    const key = options.bindingKey ?? "";
    const queue = options.queue ?? `${key}.${PIDBOX_REPLY_EXCHANGE}`;
    const bindings = this.#k(`_kombu.binding.${PIDBOX_REPLY_EXCHANGE}`);
    const member = key + PRIORITY_SEP + PRIORITY_SEP + queue;
    await this.#run(() => this.#client.sadd(bindings, member));
    const conn = duplicateRedis(this.#client, this.#rawUrl, "celeriac-replies");
    // Unbind at once on abort (before the app may close its connection).
    options.signal.addEventListener("abort", () => {
      this.#client.srem(bindings, member).catch(() => {});
      this.#client.del(this.#k(queue)).catch(() => {});
      conn.disconnect();
    }, { once: true });
    const loop = async () => {
      while (!options.signal.aborted) {
        const got = await conn.brpop(this.#k(queue), 1).catch((err: Error) => {
          log.debug("Reading replies: {error}", { error: err.message });
          return new Promise<null>((r) => setTimeout(() => r(null), 500));
        });
        if (!got) continue;
        try {
          onMessage(decodeEnvelope(got[1]));
        } catch (err) {
          log.error("Ignored a malformed reply in {queue}: {error}", {
            queue,
            error: (err as Error).message,
          });
        }
      }
    };
    void loop();
  }

  /** Add revoked ids to the `celeriac.revoked` sorted set, dropping expired ones. */
  async addRevoked(entries: readonly RevokedEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const key = this.#k(REVOKED_KEY);
    const args = entries.flatMap((e) => [String(e.expiresAt.getTime() / 1000), e.id]);
    await this.#run(() =>
      this.#client.multi()
        .zadd(key, "GT", ...args)
        .zremrangebyscore(key, "-inf", Date.now() / 1000)
        .exec()
    );
  }

  /** The revoked ids that have not expired. */
  async listRevoked(): Promise<RevokedEntry[]> {
    const flat = await this.#run(() =>
      this.#client.zrangebyscore(this.#k(REVOKED_KEY), Date.now() / 1000, "+inf", "WITHSCORES")
    );
    const out: RevokedEntry[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      out.push({ id: flat[i], expiresAt: new Date(Number(flat[i + 1]) * 1000) });
    }
    return out;
  }

  /**
   * Take rate-limit tokens from buckets shared by every worker on this
   * Redis (hashes `celeriac.ratelimit.<key>`), in one atomic script call
   * timed by the Redis server's clock.
   */
  async acquireTokens(requests: readonly TokenRequest[]): Promise<TokenGrant[]> {
    if (requests.length === 0) return [];
    const keys = requests.map((r) => this.#k(RATE_LIMIT_KEY_PREFIX + r.key));
    const args = requests.flatMap((r) => [String(r.rate), String(r.capacity), String(r.count)]);
    const flat = await this.#run(() => this.#client.celeriacTokens(keys.length, ...keys, ...args));
    return requests.map((_, i) => ({
      granted: Number(flat[2 * i]),
      retryAfterMs: Number(flat[2 * i + 1]),
    }));
  }

  /** Close all connections. Unsettled deliveries come back after the visibility timeout. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    clearInterval(this.#sweepTimer);
    await this.#sweeping;
    for (const w of this.#watchers.values()) w.close();
    await this.#returnClaims(true).catch((err) =>
      log.warn("Could not return claimed messages: {error}", { error: (err as Error).message })
    );
    this.#watchers.clear();
    if (this.#ownsClient) await closeRedis(this.#client);
  }
}

/**
 * Open a Redis broker and check that the server answers.
 *
 * @example
 * ```ts ignore
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
  const broker = new RedisBroker(url, options);
  await broker.connect();
  return broker;
}
