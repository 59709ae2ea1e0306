/**
 * The Redis result backend's subscriber: one connection of its own that
 * SUBSCRIBEs to the channel of each result waited for (named like its key)
 * and hands each message to the backend. On a single server it is a
 * `RespConnection` (../broker/resp_connection.ts) reading the messages
 * straight from its socket; through Sentinel or Cluster an ioredis
 * connection. Both subscribe again after a reconnect and then call
 * `ready`, for the backend to read the results published meanwhile; the
 * RESP one PINGs while idle so that a silently dropped connection is seen
 * (ioredis' has TCP keep-alive).
 *
 * @module
 */

import type { Redis } from "ioredis";
import { duplicateRedis, keepPinging, redisFailure } from "../broker/redis_connection.ts";
import { RedisConnectionError } from "../broker/resp_connection.ts";
import type { RespValue } from "../broker/resp_reader.ts";
import { respFailure, type RespScripts, textOrNull } from "../broker/resp_scripts.ts";
import { bulkText } from "../broker/resp_strings.ts";

/**
 * What the subscriber calls: each message, and each (re)connect.
 *
 * @example
 * ```ts
 * const handlers: ResultHandlers = { message: (ch, text) => {}, ready: () => {} };
 * ```
 */
export interface ResultHandlers {
  /** A message published on `channel` (both as text). */
  message(channel: string, message: string): void;
  /** The connection is ready: connected for the first time, or again after a drop. */
  ready(): void;
}

/**
 * The subscriptions of a result backend.
 *
 * @example
 * ```ts ignore
 * const channels = respResultChannels(scripts, url, handlers);
 * await channels.subscribe("celery-task-meta-abc");
 * ```
 */
export interface ResultChannels {
  /**
   * SUBSCRIBE to `channel` (connecting first if needed). One whose reply a
   * drop lost, once the connection had been up, resolves: the reconnect
   * subscribes to it again and then calls `ready`.
   *
   * @returns the text of the key named like the channel, read right behind
   *   the SUBSCRIBE on its connection (null: no such key), so that nothing
   *   published between the two is missed; undefined when it was not read
   *   (ioredis, RESP2, a lost reply, an error reading it, a text over 512
   *   KiB): the caller reads it
   * @throws {BrokerConnectionError} when Redis cannot be reached
   */
  subscribe(channel: string): Promise<string | null | undefined>;
  /** UNSUBSCRIBE from `channel`; it is not subscribed to again after a reconnect. */
  unsubscribe(channel: string): Promise<unknown>;
  /** Close the connection at once. */
  close(): Promise<void>;
}

/**
 * Milliseconds between the PINGs that {@link respResultChannels} sends while
 * it waits for messages. A subscriber only reads, and its connection's
 * reply timeout only runs while a command waits: without them a connection
 * dropped silently (a peer gone, a load balancer or NAT forgetting an idle
 * flow) would go unnoticed and the results published to it never heard.
 * The ioredis subscriber had TCP keep-alive after 30 s for this.
 *
 * @example
 * ```ts
 * import { RESULTS_PING_MS } from "./redis_results.ts";
 * RESULTS_PING_MS; // 25000
 * ```
 */
export const RESULTS_PING_MS = 25_000;

/**
 * Bytes of a result read on the subscriber's connection, behind its
 * SUBSCRIBE; a longer one is left for the waiter to read on the backend's
 * connection. Redis bounds what it holds to send a subscribed connection
 * (`client-output-buffer-limit pubsub`: 32 MB, or 8 MB for 60 s, by
 * default) and closes one over it, every subscription of the backend with it.
 * The read is a plain `GETRANGE` of one byte more than this (a script that
 * read `STRLEN` first cost Redis ~25 µs per call on this 2-core VM, a quarter
 * of its command time per round trip): a reply longer than this is the head
 * of a longer result, an empty one a key not stored (a result meta is never
 * empty).
 */
const SUBSCRIBER_READ_BYTES = 512 * 1024;

/**
 * The subscriber of a single server, without ioredis: a connection of its
 * own (`celeriac-results`) with the settings of `scripts`' (a command sent
 * while it reconnects waits for the attempt). Channels subscribed to are
 * subscribed again on each reconnect, before `ready` is called. A PING
 * every `pingEveryMs` puts the connection's reply timeout to work: one
 * that stopped answering is dropped and reconnected.
 *
 * @example
 * ```ts ignore
 * const channels = respResultChannels(scripts, "redis://127.0.0.1:6379/0", handlers);
 * await channels.subscribe("celery-task-meta-abc");
 * await channels.close();
 * ```
 *
 * @param scripts the backend's own connection, whose settings it copies
 * @param rawUrl the URL, for errors
 * @param on what to call
 * @param pingEveryMs milliseconds between PINGs (default {@link RESULTS_PING_MS})
 * @returns the subscriptions
 */
export function respResultChannels(
  scripts: RespScripts,
  rawUrl: string,
  on: ResultHandlers,
  pingEveryMs: number = RESULTS_PING_MS,
): ResultChannels {
  const channels = new Set<string>();
  let connected = false;
  const conn = scripts.connection({
    name: "celeriac-results",
    role: "results",
    resp3: true,
    pingEveryMs,
    channels: () => channels,
    onReady: () => {
      connected = true;
      on.ready();
    },
    onPush: (push: RespValue[]) => {
      // ["message", channel, payload]: this connection subscribes to no pattern.
      const [, channel, payload] = push;
      if (channel instanceof Uint8Array && payload instanceof Uint8Array) {
        on.message(bulkText(channel), bulkText(payload));
      }
    },
  });
  return {
    subscribe: async (channel) => {
      channels.add(channel);
      let subscribed, read;
      try {
        // A connect or reconnect under way subscribes in its greeting to the channels wanted by
        // then; this one's SUBSCRIBE goes once it is ready, unless the channel was left meanwhile:
        // written after its UNSUBSCRIBE (or after a greeting without it), it would hold the
        // channel with nothing waiting on it.
        if (conn.state !== "ready") await conn.untilReady();
        if (!channels.has(channel)) return;
        // One write, run in order: the key is read once the subscription holds (RESP3; a server
        // that refused HELLO 3 takes no such command on a subscribed connection: the caller reads).
        [subscribed, read] = await conn.commandsSettled([
          ["SUBSCRIBE", channel],
          ...conn.resp3 ? [["GETRANGE", channel, "0", String(SUBSCRIBER_READ_BYTES)]] : [],
        ]);
      } catch (err) {
        subscribed = { status: "rejected", reason: err } as const;
      }
      if (subscribed.status === "rejected") {
        const err = subscribed.reason;
        // A drop lost the reply: the reconnect subscribes to it again, then `ready` re-reads.
        if (connected && err instanceof RedisConnectionError && conn.state !== "closed") return;
        // Its waiter gives up: nothing is to subscribe to it again on the next connect.
        channels.delete(channel);
        throw respFailure(err, rawUrl);
      }
      const value = read?.status === "fulfilled" ? read.value : undefined;
      if (!(value instanceof Uint8Array)) return undefined;
      // Empty: nothing stored. Longer than the bound: too long for this connection, the caller
      // reads it.
      if (value.length === 0) return null;
      return value.length > SUBSCRIBER_READ_BYTES ? undefined : textOrNull(value);
    },
    unsubscribe: async (channel) => {
      channels.delete(channel);
      if (conn.state === "connecting") {
        // It may have subscribed to this one already (its greeting): leave it once ready, unless
        // wanted again meanwhile: that SUBSCRIBE, written once ready too (a few hops later, or
        // sooner), must not be undone by this one written after it.
        // An attempt that fails leaves it subscribed nowhere (the next one's greeting does without
        // it): left, not a failure (a waiter giving up while Redis drops must not see one).
        if (!await conn.connect().then(() => true, () => false)) return;
        if (channels.has(channel)) return;
      } else if (conn.state !== "ready") {
        // Waiting to reconnect: it subscribes to the channels left when it is back.
        return;
      }
      return await conn.command(["UNSUBSCRIBE", channel]);
    },
    close: () => conn.close(0),
  };
}

/**
 * The subscriber through ioredis (Sentinel, Cluster): a duplicate of
 * `client` (`celeriac-results`). ioredis subscribes again after a
 * reconnect to the channels it counts subscribed, among them one whose
 * `UNSUBSCRIBE` it gave up on meanwhile: that one is left again once ready.
 *
 * @example
 * ```ts ignore
 * const channels = ioredisResultChannels(client, url, handlers);
 * ```
 *
 * @param client the backend's connection, duplicated
 * @param rawUrl the URL, for errors and log lines
 * @param on what to call
 * @returns the subscriptions
 */
export function ioredisResultChannels(
  client: Redis,
  rawUrl: string,
  on: ResultHandlers,
): ResultChannels {
  const sub = duplicateRedis(client, rawUrl, "celeriac-results") as unknown as Redis;
  keepPinging(sub);
  // Channels whose UNSUBSCRIBE ioredis gave up on while it reconnected (its retries per
  // request): it still counts them subscribed, and subscribes to them again once back.
  const left = new Set<string>();
  const leave = (channels: string[]) =>
    sub.unsubscribe(...channels).catch((err) => {
      for (const c of channels) left.add(c);
      throw err;
    });
  sub.on("error", () => {});
  sub.on("message", on.message);
  const onReady = () => {
    // Emitted after ioredis has sent its re-subscriptions: these go out behind them.
    if (left.size > 0) {
      const channels = [...left];
      left.clear();
      leave(channels).catch(() => {});
    }
    on.ready();
  };
  sub.on("ready", onReady);
  const stopWatch = watchClusterSubscriber(sub, onReady);
  return {
    subscribe: (channel) => {
      left.delete(channel);
      // RESP2: no command may follow on the subscribed connection; the caller reads the key.
      return sub.subscribe(channel).then(() => undefined, (err) => {
        throw redisFailure(sub, rawUrl, err);
      });
    },
    unsubscribe: (channel) => leave([channel]),
    close: () => {
      stopWatch();
      return Promise.resolve(sub.disconnect());
    },
  };
}

/** How often a Cluster's subscriber connection is checked for a move to another node, in ms. */
const SUBSCRIBER_CHECK_MS = 250;

/** The part of ioredis's (internal) ClusterSubscriber read here. */
interface ClusterSubscriberView {
  lastActiveSubscriber?: unknown;
}

/**
 * On a Redis Cluster, ioredis subscribes on one node of its choice and, when
 * that node goes away, subscribes again on another without emitting `ready`
 * on the Cluster: results published meanwhile were never re-read, and a
 * `get()` waiting for one waited until its timeout (by hand: a result stored
 * while the subscriber moved was seen after the full 40 s). Call `moved` each
 * time the re-subscriptions on a new node have succeeded (ioredis then makes
 * it its last active subscriber). A single server's connection: nothing to
 * watch.
 */
function watchClusterSubscriber(sub: Redis, moved: () => void): () => void {
  const inner = (sub as unknown as { subscriber?: ClusterSubscriberView }).subscriber;
  if (!inner || typeof inner !== "object" || !("isStarted" in inner)) return () => {};
  let seen = inner.lastActiveSubscriber;
  const timer = setInterval(() => {
    const now = inner.lastActiveSubscriber;
    if (now === seen) return;
    seen = now;
    if (now) moved();
  }, SUBSCRIBER_CHECK_MS);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}
