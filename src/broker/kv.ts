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
 *
 * Every move between these (take, ack, requeue, reject, restore) is one
 * atomic commit that checks the versionstamp of what it moves, so processes
 * sharing a file never deliver a message twice and a crash never loses one.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { PIDBOX_REPLY_EXCHANGE } from "../protocol/control.ts";
import { pyJsonDumps, pyJsonLoads } from "../protocol/json.ts";
import type { Message, MessageProperties } from "../protocol/message.ts";
import { commitAtomic, openSharedKv, parseKvUrl, type SharedKv } from "./kv_store.ts";
import { DELIVERY_COUNT_HEADER } from "./port.ts";
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

const log = getLogger(["celeriac", "broker", "kv"]);

/**
 * The largest message the KV broker accepts, in bytes: body plus encoded
 * headers and properties. Deno KV stores at most 64 KiB per value; the rest
 * is kept for delivery and parking bookkeeping.
 *
 * @example
 * ```ts
 * import { KV_MAX_MESSAGE_BYTES } from "@celeriac/celeriac/transports";
 * const fits = (body: Uint8Array) => body.byteLength < KV_MAX_MESSAGE_BYTES - 2048;
 * ```
 */
export const KV_MAX_MESSAGE_BYTES = 60_000;

/** The longest queue name, in UTF-8 bytes (Deno KV keys are limited to 2 KiB). */
const MAX_QUEUE_BYTES = 256;
/** Deno KV allows 100 checks per atomic commit. */
const TAKE_BATCH = 64;
/** Deno KV allows 800 KiB of mutations per atomic commit. */
const TAKE_BATCH_BYTES = 600 * 1024;
const PURGE_BATCH = 100;
const ACK_BATCH = 200;
/**
 * Waits re-check at least this often. Only a fallback: changes are pushed
 * (in-process notification and a directory watch), but a lost file-system
 * event must not stall a consumer forever.
 */
const SAFETY_RECHECK_MS = 1000;
/** How long a broadcast stays readable by subscribers that are slow to look. */
const FANOUT_TTL_MS = 60_000;
/** Subscribers look for broadcasts at most this often, however busy the database is. */
const FANOUT_POLL_MIN_MS = 100;
const U64 = 2n ** 64n;

/**
 * Options of {@link openKvBroker}; URL query parameters of the same name override them.
 *
 * @example A KV broker in its own namespace
 * ```ts
 * import { type KvBrokerOptions, openKvBroker } from "@celeriac/celeriac/transports";
 * const options: KvBrokerOptions = { visibilityTimeout: 600, prefix: ["billing", "queues"] };
 * const broker = await openKvBroker("kv://:memory:", options);
 * await broker.queueDepth("celery"); // 0
 * await broker.close();
 * ```
 */
export interface KvBrokerOptions {
  /**
   * Seconds after which an unacknowledged delivery is put back in front of
   * its queue for another consumer (URL `visibility_timeout`). Default 3600.
   */
  visibilityTimeout?: number;
  /** Key namespace (URL `prefix=<name>` gives `[name]`). Default `["celeriac"]`. */
  prefix?: readonly string[];
}

interface StoredMessage {
  body: Uint8Array;
  /** pyJsonDumps of {@link Envelope}. */
  envelope: string;
  step: number;
  redelivered: boolean;
  /** Times it was restored after its visibility timeout (a consumer died holding it). */
  restores?: number;
}

interface Envelope {
  content_type: string;
  content_encoding: string;
  headers: Record<string, unknown>;
  properties: MessageProperties;
  exchange: string;
  routing_key: string;
}

interface Unacked {
  message: StoredMessage;
  queue: string;
  deadline: number;
}

interface Parked {
  message: StoredMessage;
  queue: string;
  reason: string;
  taskId: string | null;
  taskName: string | null;
  parkedAt: number;
}

interface Taken {
  tag: string;
  queue: string;
  message: StoredMessage;
}

let lastSeq = 0n;

/** A number that grows with every call, and across calls with the clock. */
function nextSeq(): bigint {
  const now = BigInt(Date.now()) * 1000n;
  lastSeq = now > lastSeq ? now : lastSeq + 1n;
  return lastSeq;
}

/** kombu's priority quantisation: 0-2 → 0, 3-5 → 3, 6-8 → 6, 9 → 9. */
function priorityStep(priority: unknown): number {
  const p = Math.min(9, Math.max(0, Math.trunc(Number(priority)) || 0));
  return p - (p % 3);
}

function messageBytes(m: StoredMessage): number {
  return m.body.byteLength + m.envelope.length;
}

function clip(text: string | null, max: number): string | null {
  return text === null || text.length <= max ? text : text.slice(0, max - 1) + "…";
}

function checkQueue(queue: unknown): string {
  if (typeof queue !== "string" || queue === "") {
    throw new TypeError(`A queue name must be a non-empty string, got ${String(queue)}`);
  }
  if (new TextEncoder().encode(queue).byteLength > MAX_QUEUE_BYTES) {
    throw new RangeError(
      `Queue name "${queue.slice(0, 40)}…" is longer than the KV broker's ${MAX_QUEUE_BYTES} bytes`,
    );
  }
  return queue;
}

function encodeMessage(message: Message, exchange: string, routingKey: string): StoredMessage {
  if (!(message.body instanceof Uint8Array)) {
    throw new TypeError("Message body must be a Uint8Array (serialize the payload first)");
  }
  const envelope: Envelope = {
    content_type: message.contentType,
    content_encoding: message.contentEncoding,
    headers: message.headers,
    properties: message.properties,
    exchange,
    routing_key: routingKey,
  };
  const stored: StoredMessage = {
    body: message.body.slice(),
    envelope: pyJsonDumps(envelope),
    step: priorityStep(message.properties.priority),
    redelivered: false,
  };
  const size = messageBytes(stored);
  if (size > KV_MAX_MESSAGE_BYTES) {
    throw new RangeError(
      `This message is ${size} bytes (body, headers and properties), over the KV broker's ` +
        `limit of ${KV_MAX_MESSAGE_BYTES} bytes (Deno KV stores at most 64 KiB per value). ` +
        `Pass a reference to large data instead of the data, or use the Redis broker (redis://)`,
    );
  }
  return stored;
}

function decodeDelivery(taken: Taken): Delivery {
  const env = pyJsonLoads(taken.message.envelope) as Partial<Envelope> | null;
  if (env === null || typeof env !== "object" || typeof env.headers !== "object") {
    throw new TypeError("stored envelope is not an object with headers");
  }
  const headers = { ...env.headers };
  if (taken.message.redelivered) headers.redelivered = true;
  if (taken.message.restores) headers[DELIVERY_COUNT_HEADER] = taken.message.restores;
  return {
    body: taken.message.body,
    contentType: String(env.content_type ?? ""),
    contentEncoding: String(env.content_encoding ?? ""),
    headers,
    properties: { ...env.properties },
    queue: taken.queue,
    deliveryTag: taken.tag,
    redelivered: taken.message.redelivered,
    exchange: String(env.exchange ?? ""),
    routingKey: String(env.routing_key ?? taken.queue),
  };
}

function parkedEntry(
  message: StoredMessage,
  queue: string,
  reason: string,
  taskId: string | null,
  taskName: string | null,
): Parked {
  return {
    message,
    queue,
    reason: clip(reason, 1000) ?? "",
    taskId: clip(taskId, 256),
    taskName: clip(taskName, 256),
    parkedAt: Date.now(),
  };
}

function headerText(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function checkLimit(limit: number | undefined, fallback: number, what: string): number {
  const n = limit ?? fallback;
  if (n !== Infinity && (!Number.isInteger(n) || n < 1)) {
    throw new RangeError(`${what}: limit must be a positive integer, got ${limit}`);
  }
  return n;
}

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
  readonly #shared: SharedKv;
  readonly #kv: Deno.Kv;
  readonly #ns: readonly string[];
  readonly #visibilityMs: number;
  readonly #sweepEveryMs: number;
  readonly #closing = new AbortController();
  readonly #busy = new Set<Promise<unknown>>();
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #sweeping: Promise<void> | null = null;
  #closed = false;

  /**
   * Use {@link openKvBroker}.
   *
   * @param shared the open database reference; the broker releases it on close
   * @param options resolved settings
   */
  constructor(shared: SharedKv, options: Required<KvBrokerOptions>) {
    this.#shared = shared;
    this.#kv = shared.kv;
    this.#ns = [...options.prefix];
    this.#visibilityMs = options.visibilityTimeout * 1000;
    this.#sweepEveryMs = Math.max(100, Math.min(this.#visibilityMs / 2, 30_000));
  }

  #k(...parts: Deno.KvKeyPart[]): Deno.KvKey {
    return [...this.#ns, ...parts];
  }

  #depthKey(queue: string): Deno.KvKey {
    return this.#k("depth", queue);
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
    checkQueue(queue);
    await this.#run(() => Promise.resolve());
  }

  /**
   * Publish at the back of the queue named by the routing key (the KV
   * broker has no exchanges: every exchange routes by queue name).
   *
   * @throws {RangeError} when the message is larger than {@link KV_MAX_MESSAGE_BYTES}
   */
  async publish(message: Message, target: PublishTarget): Promise<void> {
    const queue = checkQueue(target.routingKey);
    const stored = encodeMessage(message, target.exchange ?? "", queue);
    return await this.#run(async () => {
      await commitAtomic(
        this.#kv.atomic()
          .set(this.#k("q", queue, stored.step, nextSeq(), crypto.randomUUID()), stored)
          .sum(this.#depthKey(queue), 1n),
      );
      this.#shared.notify();
    });
  }

  /** Take up to `max` messages atomically, waiting (push-notified) while the queues are empty. */
  async take(queues: readonly string[], options: TakeOptions): Promise<Delivery[]> {
    if (queues.length === 0) throw new TypeError("take() needs at least one queue");
    const unique = [...new Set(queues.map(checkQueue))];
    if (!Number.isInteger(options.max) || options.max < 1) {
      throw new RangeError(`take() needs max to be an integer >= 1, got ${options.max}`);
    }
    if (this.#closed) return [];
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
      const seen = this.#shared.version;
      const taken = await this.#takeNow(queues, max);
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

  async #takeNow(queues: string[], max: number): Promise<Taken[]> {
    for (;;) {
      const found: { entry: Deno.KvEntry<StoredMessage>; queue: string; order: number }[] = [];
      for (const [order, queue] of queues.entries()) {
        const iter = this.#kv.list<StoredMessage>({ prefix: this.#k("q", queue) }, { limit: max });
        for await (const entry of iter) found.push({ entry, queue, order });
      }
      if (found.length === 0) return [];
      found.sort((a, b) => a.entry.value.step - b.entry.value.step || a.order - b.order);
      const op = this.#kv.atomic();
      const taken: Taken[] = [];
      const perQueue = new Map<string, number>();
      const deadline = Date.now() + this.#visibilityMs;
      let bytes = 0;
      for (const { entry, queue } of found) {
        const size = messageBytes(entry.value);
        if (taken.length === max || (taken.length > 0 && bytes + size > TAKE_BATCH_BYTES)) break;
        bytes += size;
        const tag = crypto.randomUUID();
        const unacked: Unacked = { message: entry.value, queue, deadline };
        op.check(entry).delete(entry.key).set(this.#k("unacked", tag), unacked);
        perQueue.set(queue, (perQueue.get(queue) ?? 0) + 1);
        taken.push({ tag, queue, message: entry.value });
      }
      for (const [queue, n] of perQueue) op.sum(this.#depthKey(queue), U64 - BigInt(n));
      if ((await commitAtomic(op)).ok) return taken;
    }
  }

  async #deliver(taken: Taken[]): Promise<Delivery[]> {
    const out: Delivery[] = [];
    for (const t of taken) {
      try {
        out.push(decodeDelivery(t));
      } catch (err) {
        const reason = `malformed message: ${(err as Error).message}`;
        log.error("Parking a message of {queue}: {reason}", { queue: t.queue, reason });
        await this.#settle(t.tag, (e) => this.#park(e, reason, null, null));
      }
    }
    return out;
  }

  async #putBack(taken: Taken[]): Promise<void> {
    for (const t of taken.toReversed()) await this.#settle(t.tag, (e) => this.#moveBack(e, false));
    this.#shared.notify();
  }

  /** Run `move` on the unacked entry of `tag` until it commits; false if already settled. */
  async #settle(
    tag: string,
    move: (entry: Deno.KvEntry<Unacked>) => Promise<boolean>,
  ): Promise<boolean> {
    for (;;) {
      const entry = await this.#kv.get<Unacked>(this.#k("unacked", tag));
      if (entry.versionstamp === null) return false;
      if (await move(entry)) return true;
    }
  }

  async #moveBack(
    entry: Deno.KvEntry<Unacked>,
    redelivered: boolean,
    restored = false,
  ): Promise<boolean> {
    const { queue } = entry.value;
    const message = {
      ...entry.value.message,
      redelivered: redelivered || entry.value.message.redelivered,
    };
    if (restored) message.restores = (message.restores ?? 0) + 1;
    const res = await commitAtomic(
      this.#kv.atomic()
        .check(entry)
        .delete(entry.key)
        .set(this.#k("q", queue, message.step, -nextSeq(), crypto.randomUUID()), message)
        .sum(this.#depthKey(queue), 1n),
    );
    return res.ok;
  }

  async #park(
    entry: Deno.KvEntry<Unacked>,
    reason: string,
    taskId: string | null,
    taskName: string | null,
  ): Promise<boolean> {
    const parked = parkedEntry(entry.value.message, entry.value.queue, reason, taskId, taskName);
    const res = await commitAtomic(
      this.#kv.atomic()
        .check(entry)
        .delete(entry.key)
        .set(this.#k("parked", nextSeq(), crypto.randomUUID()), parked),
    );
    return res.ok;
  }

  #sweep(): Promise<void> {
    this.#sweeping ??= this.#restoreExpired()
      .catch((err) => log.warn("Restore sweep failed: {error}", { error: String(err) }))
      .finally(() => this.#sweeping = null);
    return this.#sweeping;
  }

  async #restoreExpired(): Promise<void> {
    const now = Date.now();
    let restored = 0;
    for await (const entry of this.#kv.list<Unacked>({ prefix: this.#k("unacked") })) {
      if (entry.value.deadline <= now && await this.#moveBack(entry, true, true)) restored++;
    }
    if (restored > 0) {
      log.info("Restored {count} unacknowledged message(s) after the visibility timeout", {
        count: restored,
      });
      this.#shared.notify();
    }
  }

  /** Acknowledge: delete the unacknowledged entries. Settled deliveries are ignored. */
  async ack(deliveries: readonly Delivery[]): Promise<void> {
    return await this.#run(async () => {
      for (let i = 0; i < deliveries.length; i += ACK_BATCH) {
        const op = this.#kv.atomic();
        for (const d of deliveries.slice(i, i + ACK_BATCH)) {
          op.delete(this.#k("unacked", d.deliveryTag));
        }
        await commitAtomic(op);
      }
    });
  }

  /**
   * Park deliveries with their reasons. A delivery no longer unacknowledged
   * (acknowledged early) is parked from its own content.
   */
  async reject(rejections: readonly Rejection[]): Promise<void> {
    return await this.#run(async () => {
      for (const r of rejections) {
        const d = r.delivery;
        const taskId = r.taskId ?? headerText(d.headers.id);
        const taskName = r.taskName ?? headerText(d.headers.task);
        const moved = await this.#settle(
          d.deliveryTag,
          (e) => this.#park(e, r.reason, taskId, taskName),
        );
        if (!moved) {
          const message = {
            ...encodeMessage(d, d.exchange, d.routingKey),
            redelivered: d.redelivered,
          };
          await commitAtomic(
            this.#kv.atomic().set(
              this.#k("parked", nextSeq(), crypto.randomUUID()),
              parkedEntry(message, d.queue, r.reason, taskId, taskName),
            ),
          );
        }
        log.debug("Parked task {taskId} from {queue}: {reason}", {
          taskId,
          queue: d.queue,
          reason: r.reason,
        });
      }
    });
  }

  /** Put deliveries back in front of their queues, marked redelivered, in their order. */
  async requeue(deliveries: readonly Delivery[]): Promise<void> {
    return await this.#run(async () => {
      let moved = 0;
      for (const d of deliveries.toReversed()) {
        if (await this.#settle(d.deliveryTag, (e) => this.#moveBack(e, true))) moved++;
      }
      if (moved > 0) this.#shared.notify();
    });
  }

  /** Delete every waiting message of a queue, all priorities; resolves with how many. */
  async purge(queue: string): Promise<number> {
    checkQueue(queue);
    return await this.#run(async () => {
      let count = 0;
      for (;;) {
        const batch = await Array.fromAsync(
          this.#kv.list<StoredMessage>({ prefix: this.#k("q", queue) }, { limit: PURGE_BATCH }),
        );
        if (batch.length === 0) return count;
        const op = this.#kv.atomic();
        for (const entry of batch) op.check(entry).delete(entry.key);
        op.sum(this.#depthKey(queue), U64 - BigInt(batch.length));
        if ((await commitAtomic(op)).ok) count += batch.length;
      }
    });
  }

  /** How many messages wait in a queue (an atomically maintained counter). */
  async queueDepth(queue: string): Promise<number> {
    checkQueue(queue);
    return await this.#run(async () => {
      const entry = await this.#kv.get<Deno.KvU64>(this.#depthKey(queue));
      return Number(entry.value?.value ?? 0n);
    });
  }

  /** List parked messages, oldest first (default limit 100). */
  async listParked(options: { limit?: number } = {}): Promise<ParkedMessage[]> {
    const limit = checkLimit(options.limit, 100, "listParked()");
    return await this.#run(async () => {
      const out: ParkedMessage[] = [];
      const iter = this.#kv.list<Parked>({ prefix: this.#k("parked") }, {
        limit: limit === Infinity ? undefined : limit,
      });
      for await (const { key, value } of iter) {
        out.push({
          id: String(key[key.length - 1]),
          reason: value.reason,
          queue: value.queue,
          taskId: value.taskId,
          taskName: value.taskName,
          parkedAt: new Date(value.parkedAt),
        });
      }
      return out;
    });
  }

  /** Move parked messages (oldest first, default limit 1000) to the back of their queues, marked redelivered. */
  async requeueParked(options: { limit?: number } = {}): Promise<number> {
    const limit = checkLimit(options.limit, 1000, "requeueParked()");
    return await this.#run(async () => {
      let moved = 0;
      while (moved < limit) {
        const batch = await Array.fromAsync(
          this.#kv.list<Parked>({ prefix: this.#k("parked") }, {
            limit: Math.min(limit - moved, PURGE_BATCH),
          }),
        );
        if (batch.length === 0) break;
        for (const entry of batch) {
          const { queue } = entry.value;
          const message = { ...entry.value.message, redelivered: true };
          const res = await commitAtomic(
            this.#kv.atomic()
              .check(entry)
              .delete(entry.key)
              .set(this.#k("q", queue, message.step, nextSeq(), crypto.randomUUID()), message)
              .sum(this.#depthKey(queue), 1n),
          );
          if (res.ok) moved++;
        }
      }
      if (moved > 0) this.#shared.notify();
      return moved;
    });
  }

  /** The visibility timeout in milliseconds. */
  get visibilityTimeout(): number {
    return this.#visibilityMs;
  }

  /** Renew leases: move the deadline of still-unacknowledged deliveries forward. */
  async extend(deliveries: readonly Delivery[]): Promise<void> {
    return await this.#run(async () => {
      for (const d of deliveries) {
        await this.#settle(d.deliveryTag, async (e) => {
          const deadline = Date.now() + this.#visibilityMs;
          const res = await commitAtomic(
            this.#kv.atomic().check(e).set(e.key, { ...e.value, deadline }),
          );
          return res.ok;
        });
      }
    });
  }

  /**
   * Broadcast: the message is kept for a minute under `["fanout", exchange]`
   * so that subscribers of every process sharing the database read it.
   */
  async broadcast(exchange: string, message: Message, routingKey = ""): Promise<void> {
    const stored = encodeMessage(message, exchange, routingKey);
    return await this.#run(async () => {
      await commitAtomic(
        this.#kv.atomic().set(
          this.#k("fanout", exchange, nextSeq(), crypto.randomUUID()),
          { message: stored, at: Date.now() },
          { expireIn: FANOUT_TTL_MS },
        ),
      );
      this.#shared.notify();
    });
  }

  /**
   * Replies to remote-control calls: a KV queue is named by its routing key,
   * so the replies published with `bindingKey` are taken from that queue
   * until `signal` aborts, then the queue is purged.
   */
  #subscribeReplies(
    onMessage: (message: Message) => void,
    signal: AbortSignal,
    options: SubscribeOptions,
  ): Promise<void> {
    const queue = checkQueue(options.bindingKey ?? "");
    const loop = async () => {
      while (!signal.aborted && !this.#closed) {
        const got = await this.take([queue], { max: 100, signal });
        if (got.length) await this.ack(got);
        for (const d of got) onMessage(d);
      }
    };
    this.#run(() =>
      loop().catch((err) =>
        log.error("Stopped reading replies on {queue}: {error}", { queue, error: String(err) })
      ).finally(() => this.#closed ? undefined : this.purge(queue).then(() => {}, () => {}))
    );
    return Promise.resolve();
  }

  /**
   * Read broadcasts made since subscribing, woken by database changes (at
   * most every 100 ms) and at least every second.
   */
  subscribe(
    exchange: string,
    onMessage: (message: Message) => void,
    options: SubscribeOptions,
  ): Promise<void> {
    if (this.#closed) {
      throw new Error("This KV broker is closed: open a new one with openKvBroker()");
    }
    const signal = AbortSignal.any([options.signal, this.#closing.signal]);
    if (exchange === PIDBOX_REPLY_EXCHANGE) {
      return this.#subscribeReplies(onMessage, signal, options);
    }
    const since = Date.now();
    const seen = new Set<string>();
    const prefix = this.#k("fanout", exchange);
    const look = async () => {
      const listed = new Set<string>();
      for await (const entry of this.#kv.list<{ message: StoredMessage; at: number }>({ prefix })) {
        const id = String(entry.key[entry.key.length - 1]);
        listed.add(id);
        if (seen.has(id) || entry.value.at < since) continue;
        seen.add(id);
        try {
          onMessage(decodeDelivery({ tag: id, queue: "", message: entry.value.message }));
        } catch (err) {
          log.error("Ignored a malformed broadcast on {exchange}: {error}", {
            exchange,
            error: (err as Error).message,
          });
        }
      }
      for (const id of seen) if (!listed.has(id)) seen.delete(id);
    };
    const loop = async () => {
      while (!signal.aborted && !this.#closed) {
        const version = this.#shared.version;
        await look();
        await new Promise((r) => setTimeout(r, FANOUT_POLL_MIN_MS));
        await this.#shared.changed(version, SAFETY_RECHECK_MS, signal);
      }
    };
    this.#run(() =>
      loop().catch((err) =>
        log.error("Stopped reading broadcasts on {exchange}: {error}", {
          exchange,
          error: String(err),
        })
      )
    );
    return Promise.resolve();
  }

  /** Remember revoked ids under `["revoked", id]`, expiring with them. */
  async addRevoked(entries: readonly RevokedEntry[]): Promise<void> {
    return await this.#run(async () => {
      const now = Date.now();
      for (let i = 0; i < entries.length; i += ACK_BATCH) {
        const op = this.#kv.atomic();
        for (const e of entries.slice(i, i + ACK_BATCH)) {
          const ms = e.expiresAt.getTime() - now;
          if (ms > 0) op.set(this.#k("revoked", e.id), e.expiresAt.getTime(), { expireIn: ms });
        }
        await commitAtomic(op);
      }
    });
  }

  /** The revoked ids that have not expired. */
  async listRevoked(): Promise<RevokedEntry[]> {
    return await this.#run(async () => {
      const now = Date.now();
      const out: RevokedEntry[] = [];
      for await (const e of this.#kv.list<number>({ prefix: this.#k("revoked") })) {
        if (e.value > now) {
          out.push({ id: String(e.key[e.key.length - 1]), expiresAt: new Date(e.value) });
        }
      }
      return out;
    });
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
  const parsed = parseKvUrl(url);
  const visibilityTimeout = parsed.visibilityTimeout ?? options.visibilityTimeout ?? 3600;
  if (!(visibilityTimeout > 0) || !Number.isFinite(visibilityTimeout)) {
    throw new RangeError(
      `visibilityTimeout must be a positive number of seconds, got ${visibilityTimeout}`,
    );
  }
  const prefix = parsed.prefix !== undefined ? [parsed.prefix] : options.prefix ?? ["celeriac"];
  if (prefix.length === 0) {
    throw new RangeError('prefix must name at least one key part, e.g. ["celeriac"]');
  }
  const shared = await openSharedKv(parsed.path, url);
  return new KvBroker(shared, { visibilityTimeout, prefix });
}
