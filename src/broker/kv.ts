/**
 * The embedded Deno KV transport: a broker in a SQLite file (or in memory)
 * that several processes on one machine share, with no server to run.
 *
 * Key layout, under a namespace prefix (default `["celeriac"]`):
 *
 * - `[...ns, "q", queue, step, seq, id]` → a waiting message. `step` is the
 *   kombu priority step (0, 3, 6, 9; lower is taken first), `seq` a bigint
 *   that orders FIFO (positive, growing; negative for messages put back in
 *   front), `id` a random UUID that keeps keys unique across processes.
 * - `[...ns, "depth", queue]` → `Deno.KvU64` count of waiting messages.
 * - `[...ns, "unacked", deliveryTag]` → a delivered message, its queue and
 *   the lease deadline after which a restore sweep puts it back in front.
 * - `[...ns, "parked", seq, id]` → a rejected message with its reason.
 * - `[...ns, "parked-count"]` → `Deno.KvU64` count of parked messages.
 * - `[...ns, "reply", routingKey, seq, id]` → a remote-control reply,
 *   expiring after a minute; `[...ns, "fanout", exchange, seq, id]` → a
 *   broadcast, the same.
 *
 * Every move between these (take, ack, requeue, reject, restore) is one
 * atomic commit that checks the versionstamp of what it moves, so processes
 * sharing a file never deliver a message twice and a crash never loses one.
 *
 * This file holds the class that puts its parts together and opens it
 * (its options in kv_options.ts): records and their encoding in kv_message.ts, the atomic moves
 * (also purging a queue and renewing leases) in kv_moves.ts, parking in
 * kv_parked.ts, broadcasts in kv_fanout.ts, remote-control replies in kv_replies.ts,
 * batched publishes and acknowledgements in kv_outbox.ts, the shared
 * database in kv_store.ts.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { PIDBOX_REPLY_EXCHANGE } from "../protocol/control.ts";
import type { Message } from "../protocol/message.ts";
import { keepBroadcast, watchBroadcasts } from "./kv_fanout.ts";
import { keepReply, subscribeReplies } from "./kv_replies.ts";
import { countParked, listParked, parkRejection, requeueParked } from "./kv_parked.ts";
import {
  checkLimit,
  checkQueue,
  decodeDelivery,
  encodeMessage,
  KV_MAX_MESSAGE_BYTES,
  type Taken,
} from "./kv_message.ts";
import {
  type KvScope,
  moveBackMany,
  parkUnacked,
  purgeQueue,
  restoreExpired,
  SAFETY_RECHECK_MS,
  settleUnacked,
  TAKE_BATCH,
  takeBatch,
} from "./kv_moves.ts";
import { renewKvLeases } from "./kv_leases.ts";
import { brokerClosed, type BrokerConnectionError } from "./errors.ts";
import { DEFAULT_OUTAGE_LIMIT, retryWhileDown } from "./outage.ts";
import { KvOutbox } from "./kv_outbox.ts";
import { readDepth, repairDepths } from "./kv_depth.ts";
import { addRevoked, listRevoked } from "./kv_revoked.ts";
import { openSharedKv, type SharedKv } from "./kv_store.ts";
import { type KvBrokerOptions, resolveKvBrokerOptions } from "./kv_options.ts";
import type {
  Broker,
  Delivery,
  ParkedMessage,
  PublishTarget,
  Rejection,
  RequeueOptions,
  RevokedEntry,
  SubscribeOptions,
  Subscription,
  TakeOptions,
} from "./port.ts";

export type { KvBrokerOptions } from "./kv_options.ts";

const log = getLogger(["celeriac", "broker", "kv"]);

/** Publishes check that the file is still the one opened at most this often. */
const PUBLISH_FILE_CHECK_MS = 1000;

/**
 * A broker in Deno KV: a SQLite file shared by the processes of one machine,
 * or `:memory:` shared within one process.
 *
 * @example
 * ```ts
 * import { openKvBroker } from "@celeriac/celeriac/transports";
 * const broker = await openKvBroker("kv://:memory:");
 * const body = new TextEncoder().encode("[[2, 3], {}, {}]");
 * await broker.publish({
 *   body,
 *   contentType: "application/json",
 *   contentEncoding: "utf-8",
 *   headers: { task: "add", id: crypto.randomUUID() },
 *   properties: {},
 * }, { routingKey: "celery" });
 * const [d] = await broker.take(["celery"], { max: 1 });
 * await broker.ack([d]);
 * await broker.close();
 * ```
 */
export class KvBroker implements Broker {
  /** Always `kv`. */
  readonly transport = "kv";
  /** {@link KV_MAX_MESSAGE_BYTES}: a bigger message is refused. */
  readonly maxMessageBytes: number = KV_MAX_MESSAGE_BYTES;
  readonly #shared: SharedKv;
  readonly #kv: Deno.Kv;
  readonly #ns: readonly string[];
  readonly #scope: KvScope;
  readonly #visibilityMs: number;
  readonly #sweepEveryMs: number;
  readonly #outageLimit: number;
  readonly #closing = new AbortController();
  readonly #busy = new Set<Promise<unknown>>();
  readonly #outbox: KvOutbox;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #sweeping: Promise<void> | null = null;
  /**
   * Set once the sweep or a publish finds the file deleted or replaced:
   * every take and publish then fails with it.
   */
  #lost: BrokerConnectionError | null = null;
  /** When a publish last checked the file (see {@link KvBroker.publish}). */
  #publishCheckedAt = 0;
  #publishCheck: Promise<void> | null = null;
  #closed = false;

  /**
   * Use {@link openKvBroker}.
   *
   * @param shared the open database reference; the broker releases it on close
   * @param options resolved settings
   */
  constructor(
    shared: SharedKv,
    options: Omit<KvBrokerOptions, "signal"> & {
      visibilityTimeout: number;
      prefix: readonly string[];
    },
  ) {
    this.#shared = shared;
    this.#kv = shared.kv;
    this.#ns = [...options.prefix];
    this.#visibilityMs = options.visibilityTimeout * 1000;
    this.#sweepEveryMs = Math.max(100, Math.min(this.#visibilityMs / 2, 30_000));
    this.#outageLimit = options.outageRetryLimit ?? DEFAULT_OUTAGE_LIMIT;
    this.#scope = {
      kv: this.#kv,
      shared,
      k: (...parts) => this.#k(...parts),
      depthKey: (queue) => this.#depthKey(queue),
    };
    this.#outbox = new KvOutbox({
      kv: this.#kv,
      messageKey: (queue, step, seq) => this.#k("q", queue, step, seq, crypto.randomUUID()),
      depthKey: (queue) => this.#depthKey(queue),
      repairDepths: (queues) => repairDepths(this.#scope, queues),
      committed: () => this.#shared.notify(),
    });
  }

  #k(...parts: Deno.KvKeyPart[]): Deno.KvKey {
    return [...this.#ns, ...parts];
  }

  #depthKey(queue: string): Deno.KvKey {
    return this.#k("depth", queue);
  }

  /**
   * Run a settling step (safe to repeat: a deletion, a park, a renewal),
   * retrying it while the file cannot be written (a full disk), for the
   * outage limit or until {@link KvBroker.close}.
   */
  #retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retryWhileDown(fn, { limit: this.#outageLimit, what, signal: this.#closing.signal });
  }

  #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      throw new Error("This KV broker is closed: open a new one with openKvBroker()");
    }
    const p = fn();
    const done = () => this.#busy.delete(p);
    this.#busy.add(p);
    p.then(done, done);
    return p;
  }

  /** Check the queue name; KV queues need no declaration. */
  async declareQueue(queue: string): Promise<void> {
    checkQueue(queue, "declareQueue()");
    await this.#run(() => Promise.resolve());
  }

  /**
   * Publish at the back of the queue named by the routing key (the KV
   * broker has no exchanges: every exchange routes by queue name). Concurrent
   * publishes are committed together (see kv_outbox.ts); each resolves once
   * its message is stored, or rejects with the commit's error. At most once
   * a second, a publish first checks that the path still names the file
   * opened: one deleted or replaced since (`rm -rf .celeriac`) would take
   * the message where no worker reads. A remote-control reply (exchange
   * `reply.celery.pidbox`) is kept for its caller instead (kv_replies.ts).
   *
   * @throws {RangeError} when the message is larger than {@link KV_MAX_MESSAGE_BYTES}
   * @throws {BrokerConnectionError} when the file was deleted or replaced (not transient)
   */
  async publish(message: Message, target: PublishTarget): Promise<void> {
    const queue = checkQueue(target.routingKey, "publish()");
    const stored = encodeMessage(message, target.exchange ?? "", queue);
    const check = this.#checkFileForPublish();
    if (check) await check;
    if (this.#lost) throw this.#lost;
    if (target.exchange === PIDBOX_REPLY_EXCHANGE) {
      return await this.#run(() => keepReply(this.#scope, queue, stored));
    }
    return await this.#run(() => this.#outbox.put(queue, stored));
  }

  /** The file check a publish waits for, when one is due (one at a time); null when none is. */
  #checkFileForPublish(): Promise<void> | null {
    if (this.#lost || Date.now() - this.#publishCheckedAt < PUBLISH_FILE_CHECK_MS) {
      return this.#publishCheck;
    }
    this.#publishCheck ??= this.#shared.checkFile().then((lost) => {
      this.#publishCheckedAt = Date.now();
      this.#publishCheck = null;
      this.#lost ??= lost;
      if (this.#lost) this.#shared.notify(); // wakes this process's takes, which fail with it
    });
    return this.#publishCheck;
  }

  /**
   * Take up to `max` messages atomically, waiting (push-notified) while the queues are empty.
   *
   * @throws {BrokerConnectionError} (not transient) when the broker was closed
   */
  async take(queues: readonly string[], options: TakeOptions): Promise<Delivery[]> {
    if (queues.length === 0) throw new TypeError("take() needs at least one queue");
    const unique = [...new Set(queues.map((q) => checkQueue(q, "take()")))];
    if (!Number.isInteger(options.max) || options.max < 1) {
      throw new RangeError(`take() needs max to be an integer >= 1, got ${options.max}`);
    }
    if (this.#closed) throw brokerClosed(`kv://${this.#shared.path}`, "openKvBroker()");
    const stop = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
    return await this.#run(() => this.#takeLoop(unique, Math.min(options.max, TAKE_BATCH), stop));
  }

  async #takeLoop(queues: string[], max: number, stop: AbortSignal): Promise<Delivery[]> {
    if (this.#sweepTimer === undefined) {
      const timer = setInterval(() => this.#sweep(), this.#sweepEveryMs);
      Deno.unrefTimer(timer);
      this.#sweepTimer = timer;
      await this.#sweep();
    }
    while (!stop.aborted) {
      if (this.#lost) throw this.#lost;
      const seen = this.#shared.version;
      const taken = await takeBatch(this.#scope, queues, max, this.#visibilityMs);
      if (taken.length > 0) {
        if (stop.aborted) {
          await this.#putBack(taken);
          return [];
        }
        return await this.#deliver(taken);
      }
      await this.#shared.changed(seen, SAFETY_RECHECK_MS, stop);
    }
    return [];
  }

  async #deliver(taken: Taken[]): Promise<Delivery[]> {
    const out: Delivery[] = [];
    for (const t of taken) {
      try {
        out.push(decodeDelivery(t));
      } catch (err) {
        const reason = `malformed message: ${(err as Error).message}`;
        log.error("Parking a message of {queue}: {reason}", { queue: t.queue, reason });
        await settleUnacked(
          this.#scope,
          t.tag,
          (e) => parkUnacked(this.#scope, e, reason, null, null),
        );
      }
    }
    return out;
  }

  async #putBack(taken: Taken[]): Promise<void> {
    await moveBackMany(this.#scope, taken.map((t) => t.tag), false);
    this.#shared.notify();
  }

  /** Check the file is still the one opened (waking the takes if not), then restore. */
  #sweep(): Promise<void> {
    this.#sweeping ??= (async () => {
      this.#lost ??= await this.#shared.checkFile();
      if (this.#lost) return this.#shared.notify();
      await restoreExpired(this.#scope);
    })()
      .catch((err) => log.warn("Restore sweep failed: {error}", { error: String(err) }))
      .finally(() => this.#sweeping = null);
    return this.#sweeping;
  }

  /**
   * Acknowledge: delete the unacknowledged entries. Settled deliveries are
   * ignored. Concurrent acknowledgements and publishes share commits (see
   * kv_outbox.ts); this resolves once its deletions are committed. While
   * the file cannot be written (a full disk) the deletions are retried, with
   * backoff, for `outageRetryLimit` seconds (deleting again is harmless).
   */
  async ack(deliveries: readonly Delivery[]): Promise<void> {
    const keys = deliveries.map((d) => this.#k("unacked", d.deliveryTag));
    const what = `acknowledge ${keys.length} message(s)`;
    return await this.#run(() => this.#retrying(what, () => this.#outbox.delete(keys)));
  }

  /**
   * Park deliveries with their reasons. A delivery no longer unacknowledged
   * (acknowledged early) is parked from its own content. Each park (one
   * commit) is retried while the file cannot be written, as
   * {@link KvBroker.ack}; one that failed changed nothing.
   *
   * @returns the rejections parked: all of them
   */
  async reject(rejections: readonly Rejection[]): Promise<readonly Rejection[]> {
    await this.#run(async () => {
      for (const r of rejections) {
        await this.#retrying("park 1 message", () => parkRejection(this.#scope, r));
      }
    });
    return rejections;
  }

  /**
   * Put deliveries back in front of their queues, marked redelivered, in
   * their order; counted as restored when their consumer died holding them.
   */
  async requeue(deliveries: readonly Delivery[], options: RequeueOptions = {}): Promise<void> {
    return await this.#run(async () => {
      const tags = deliveries.map((d) => d.deliveryTag);
      const counted = options.consumerDied ?? false;
      if (await moveBackMany(this.#scope, tags, true, counted) > 0) this.#shared.notify();
    });
  }

  /** Delete every waiting message of a queue, all priorities; resolves with how many. */
  async purge(queue: string): Promise<number> {
    checkQueue(queue, "purge()");
    return await this.#run(() => purgeQueue(this.#scope, queue));
  }

  /**
   * How many messages wait in a queue (an atomically maintained counter; one
   * found malformed is reset to the messages counted, with a warning).
   */
  async queueDepth(queue: string): Promise<number> {
    checkQueue(queue, "queueDepth()");
    return await this.#run(() => readDepth(this.#scope, queue));
  }

  /** How many messages are parked. */
  async countParked(): Promise<number> {
    return await this.#run(() => countParked(this.#scope));
  }

  /** List parked messages, oldest first (default limit 100). */
  async listParked(options: { limit?: number } = {}): Promise<ParkedMessage[]> {
    const limit = checkLimit(options.limit, 100, "listParked()");
    return await this.#run(() => listParked(this.#scope, limit));
  }

  /** Move parked messages (oldest first, default limit 1000) to the back of their queues, marked redelivered. */
  async requeueParked(options: { limit?: number } = {}): Promise<number> {
    const limit = checkLimit(options.limit, 1000, "requeueParked()");
    return await this.#run(() => requeueParked(this.#scope, limit));
  }

  /** The visibility timeout in milliseconds. */
  get visibilityTimeout(): number {
    return this.#visibilityMs;
  }

  /**
   * Renew leases: move the deadline of still-unacknowledged deliveries
   * forward, 50 to a commit. Resolves with those no longer in `unacked`
   * (settled, or restored to their queue after their lease ran out).
   * Retried while the file cannot be written, as {@link KvBroker.ack}.
   */
  async extend(deliveries: readonly Delivery[]): Promise<Delivery[]> {
    if (deliveries.length === 0) return [];
    const tags = deliveries.map((d) => d.deliveryTag);
    const what = `renew ${tags.length} lease(s)`;
    const gone = new Set(
      await this.#run(() =>
        this.#retrying(what, () => renewKvLeases(this.#scope, tags, this.#visibilityMs))
      ),
    );
    return deliveries.filter((d) => gone.has(d.deliveryTag));
  }

  /**
   * Broadcast: the message is kept for a minute under `["fanout", exchange]`
   * so that subscribers of every process sharing the database read it.
   */
  async broadcast(exchange: string, message: Message, routingKey = ""): Promise<void> {
    const stored = encodeMessage(message, exchange, routingKey);
    return await this.#run(() => keepBroadcast(this.#scope, exchange, stored));
  }

  /**
   * Read broadcasts made since subscribing, woken by database changes (at
   * most every 100 ms) and at least every second.
   */
  subscribe(
    exchange: string,
    onMessage: (message: Message) => void,
    options: SubscribeOptions,
  ): Promise<Subscription | void> {
    if (this.#closed) {
      throw new Error("This KV broker is closed: open a new one with openKvBroker()");
    }
    const signal = AbortSignal.any([options.signal, this.#closing.signal]);
    if (exchange === PIDBOX_REPLY_EXCHANGE) {
      return subscribeReplies(
        { scope: this.#scope, closed: () => this.#closed, run: (fn) => this.#run(fn) },
        checkQueue(options.bindingKey ?? "", "subscribe()"),
        onMessage,
        signal,
      );
    }
    this.#run(() => watchBroadcasts(this.#scope, exchange, onMessage, signal, () => !this.#closed));
    return Promise.resolve();
  }

  /** Remember revoked ids under `["revoked", id]` until they expire, the 50,000 expiring last. */
  async addRevoked(entries: readonly RevokedEntry[]): Promise<void> {
    return await this.#run(() => addRevoked(this.#scope, entries));
  }

  /** The revoked ids that have not expired. */
  async listRevoked(): Promise<RevokedEntry[]> {
    return await this.#run(() => listRevoked(this.#scope));
  }

  /**
   * Stop the restore sweep, end pending takes with `[]` and release the
   * database (closed when no other broker or backend of this process uses it).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    clearInterval(this.#sweepTimer);
    await Promise.allSettled([...this.#busy, this.#sweeping]);
    await this.#shared.release();
  }
}

/**
 * Open a broker on a Deno KV database: `kv://path/to/file.sqlite` (relative
 * to the working directory), `kv:///absolute/path.sqlite` or `kv://:memory:`,
 * with optional `?visibility_timeout=<seconds>&prefix=<namespace>`.
 *
 * @example
 * ```ts
 * import { openKvBroker } from "@celeriac/celeriac/transports";
 * const broker = await openKvBroker("kv://:memory:", { visibilityTimeout: 600 });
 * console.assert(broker.transport === "kv");
 * await broker.close();
 * ```
 *
 * @param url the broker URL
 * @param options transport options (the URL's query overrides them)
 * @returns an open broker
 * @throws {TypeError} when the URL is not a `kv://` URL
 * @throws {RangeError} when the visibility timeout is not positive or the prefix is empty
 * @throws {BrokerConnectionError} when the database cannot be opened
 */
export async function openKvBroker(url: string, options: KvBrokerOptions = {}): Promise<KvBroker> {
  options.signal?.throwIfAborted();
  const { path, visibilityTimeout, prefix } = resolveKvBrokerOptions(url, options);
  const shared = await openSharedKv(path, url, options.signal);
  const outageRetryLimit = options.outageRetryLimit;
  const broker = new KvBroker(shared, { visibilityTimeout, prefix, outageRetryLimit });
  try {
    // A store parked in before the parked counter existed gets it now, before this broker parks.
    await broker.countParked();
  } catch (err) {
    await broker.close();
    throw err;
  }
  return broker;
}
