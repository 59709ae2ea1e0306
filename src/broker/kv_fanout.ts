/**
 * Broadcasts in Deno KV: a broadcast is kept for a minute under
 * `["fanout", exchange, seq, id]` so that subscribers of every process
 * sharing the database read it; a subscriber lists the exchange when the
 * database changes (at most every 100 ms, at least every second) and hands
 * over each broadcast made since it subscribed, once. Replies to remote
 * control calls are not broadcasts in KV: they are taken from the queue
 * named by their routing key ({@link subscribeReplies}).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Message } from "../protocol/message.ts";
import type { Delivery, Subscription, TakeOptions } from "./port.ts";
import { commitAtomic } from "./kv_store.ts";
import { decodeDelivery, nextSeq, type StoredMessage } from "./kv_message.ts";
import { type KvScope, SAFETY_RECHECK_MS } from "./kv_moves.ts";

const log = getLogger(["celeriac", "broker", "kv"]);

/** How long a broadcast stays readable by subscribers that are slow to look. */
const FANOUT_TTL_MS = 60_000;
/** Subscribers look for broadcasts at most this often, however busy the database is. */
const FANOUT_POLL_MIN_MS = 100;

/**
 * Keep a broadcast (encoded with `encodeMessage`) for subscribers to read,
 * and wake them.
 *
 * @example
 * ```ts ignore
 * import { keepBroadcast } from "./kv_fanout.ts";
 * await keepBroadcast(scope, "celeryev", encodeMessage(event, "celeryev", "task.succeeded"));
 * ```
 *
 * @param scope the broker's database and namespace
 * @param exchange the exchange
 * @param stored the encoded message
 */
export async function keepBroadcast(
  scope: KvScope,
  exchange: string,
  stored: StoredMessage,
): Promise<void> {
  await commitAtomic(
    scope.kv.atomic().set(
      scope.k("fanout", exchange, nextSeq(), crypto.randomUUID()),
      { message: stored, at: Date.now() },
      { expireIn: FANOUT_TTL_MS },
    ),
  );
  scope.shared.notify();
}

/**
 * Read the broadcasts on `exchange` made from now on until `signal` aborts
 * or `open()` turns false; a malformed one is logged and skipped. Resolves
 * when reading stops (a failure is logged, not thrown).
 *
 * @example
 * ```ts ignore
 * import { watchBroadcasts } from "./kv_fanout.ts";
 * void watchBroadcasts(scope, "celeryev", (m) => console.log(m.headers), signal, () => true);
 * ```
 *
 * @param scope the broker's database and namespace
 * @param exchange the exchange
 * @param onMessage called with each broadcast
 * @param signal stops reading
 * @param open whether the broker is still open
 */
export function watchBroadcasts(
  scope: KvScope,
  exchange: string,
  onMessage: (message: Message) => void,
  signal: AbortSignal,
  open: () => boolean,
): Promise<void> {
  const since = Date.now();
  const seen = new Set<string>();
  const prefix = scope.k("fanout", exchange);
  const look = async () => {
    const listed = new Set<string>();
    for await (const entry of scope.kv.list<{ message: StoredMessage; at: number }>({ prefix })) {
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
    while (!signal.aborted && open()) {
      const version = scope.shared.version;
      await look();
      await new Promise((r) => setTimeout(r, FANOUT_POLL_MIN_MS));
      await scope.shared.changed(version, SAFETY_RECHECK_MS, signal);
    }
  };
  return loop().catch((err) =>
    log.error("Stopped reading broadcasts on {exchange}: {error}", {
      exchange,
      error: String(err),
    })
  );
}

/**
 * What {@link subscribeReplies} needs of the broker.
 *
 * @example
 * ```ts ignore
 * const host: RepliesHost = {
 *   closed: () => broker.closed,
 *   take: (queues, options) => broker.take(queues, options),
 *   takeNow: (queue) => broker.takeNow(queue),
 *   ack: (deliveries) => broker.ack(deliveries),
 *   purge: (queue) => broker.purge(queue),
 *   run: (fn) => broker.track(fn()),
 * };
 * ```
 */
export interface RepliesHost {
  /** Whether the broker was closed. */
  closed(): boolean;
  /** The broker's take (waits for messages until the signal aborts). */
  take(queues: readonly string[], options: TakeOptions): Promise<Delivery[]>;
  /** What the queue holds now, taken without waiting. */
  takeNow(queue: string): Promise<Delivery[]>;
  /** The broker's acknowledgement. */
  ack(deliveries: readonly Delivery[]): Promise<void>;
  /** The broker's purge. */
  purge(queue: string): Promise<number>;
  /** Run work the broker's close waits for. */
  run<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * Replies to remote-control calls: a KV queue is named by its routing key,
 * so the replies published with that key are taken from the queue `queue`
 * until `signal` aborts, then the queue is purged. The subscription's
 * `flush` ends the take under way (which puts back what it took), holds the
 * loop, and reads the queue itself: nothing taken is left unhanded.
 *
 * @example
 * ```ts ignore
 * const sub = await subscribeReplies(host, "reply.celery.pidbox", (m) => replies.push(m), signal);
 * await sub.flush?.();
 * ```
 *
 * @param host the broker
 * @param queue the reply queue (checked by the caller)
 * @param onMessage called with each reply
 * @param signal stops reading
 * @returns the subscription
 */
export function subscribeReplies(
  host: RepliesHost,
  queue: string,
  onMessage: (message: Message) => void,
  signal: AbortSignal,
): Promise<Subscription> {
  const handOver = async (got: Delivery[]) => {
    if (got.length) await host.ack(got);
    for (const d of got) onMessage(d);
  };
  let iteration = Promise.resolve();
  let wake: AbortController | null = null;
  let hold: Promise<void> | null = null;
  const loop = async () => {
    while (!signal.aborted && !host.closed()) {
      if (hold) await hold;
      // The broker may have closed, or the signal aborted, during a flush: take() would reject.
      if (signal.aborted || host.closed()) break;
      const woken = wake = new AbortController();
      const stop = AbortSignal.any([signal, woken.signal]);
      await (iteration = host.take([queue], { max: 100, signal: stop }).then(handOver));
    }
  };
  const flush = async () => {
    if (signal.aborted || host.closed()) return;
    const held = Promise.withResolvers<void>();
    hold = held.promise;
    wake?.abort();
    try {
      await iteration.catch(() => {});
      await handOver(await host.takeNow(queue));
    } finally {
      hold = null;
      held.resolve();
    }
  };
  host.run(() =>
    loop().catch((err) =>
      log.error("Stopped reading replies on {queue}: {error}", { queue, error: String(err) })
    ).finally(() => host.closed() ? undefined : host.purge(queue).then(() => {}, () => {}))
  );
  return Promise.resolve({ flush });
}
