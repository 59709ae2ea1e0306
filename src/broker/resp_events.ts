/**
 * The Celery events traffic on a single Redis server through
 * {@link RespConnection} instead of ioredis: the worker's event batches are
 * PUBLISHed from their bytes on a connection of their own, and an event
 * receiver reads the messages of its PSUBSCRIBE straight from the socket.
 * Sentinel and Cluster URLs keep ioredis (see `isSingleServer` in redis_url.ts).
 *
 * @module
 */

import type { RedisUrlOptions } from "./redis_url.ts";
import { RespConnection, type RespConnectionOptions } from "./resp_connection.ts";
import type { RespValue } from "./resp_reader.ts";
import { replyTimeoutOf, respFailure, respOptions } from "./resp_scripts.ts";

const utf8 = new TextEncoder();
/**
 * A subscriber's read buffer, bytes: a burst of `task.multi` batches (up to
 * ~170 KB each with its base64 body from a busy Celeriac worker's 500
 * events, ~8 KB from Celery's 24) comes in a few reads instead of many
 * small ones; a batch read in part is moved to the buffer's start, and a
 * larger one grows the buffer to its size.
 */
const SUBSCRIBER_BUFFER = 256 * 1024;

/**
 * Options of {@link RespEvents}.
 *
 * @example
 * ```ts
 * import type { RespEventsOptions } from "./resp_events.ts";
 * const o: RespEventsOptions = { pingEveryMs: 10_000 };
 * ```
 */
export interface RespEventsOptions {
  /**
   * A subscriber whose PINGs get no reply for this long, ms, is taken for
   * dead (a peer gone without closing it) and reconnected. Default 30000.
   */
  replyTimeoutMs?: number;
  /**
   * How often a subscriber PINGs its server, ms: a subscriber only reads,
   * so without them a silently dropped connection would go unnoticed and
   * the events sent meanwhile unheard. Default 25000.
   */
  pingEveryMs?: number;
}

/**
 * Publishing and subscribing to the events channels of one Redis server.
 *
 * @example
 * ```ts
 * import { RespEvents } from "./resp_events.ts";
 * import { parseRedisUrl } from "./redis_url.ts";
 * const url = "redis://127.0.0.1:6379/0";
 * const events = new RespEvents(parseRedisUrl(url), url);
 * await events.publish("/0.celeryev/task.multi", new TextEncoder().encode("{}"));
 * await events.close();
 * ```
 */
export class RespEvents {
  readonly #settings: RespConnectionOptions;
  readonly #rawUrl: string;
  #publisher: RespConnection | null = null;
  readonly #channels = new Map<string, Uint8Array>();
  readonly #subscribers = new Set<RespConnection>();
  readonly #keepAlive: Partial<RespConnectionOptions>;

  /**
   * @param url the parsed URL (a single server)
   * @param rawUrl the URL text, for errors and log lines
   * @param options how subscribers notice a dead connection (see {@link RespEventsOptions})
   */
  constructor(url: RedisUrlOptions, rawUrl: string, options: RespEventsOptions = {}) {
    this.#rawUrl = rawUrl;
    this.#settings = respOptions(url, rawUrl);
    this.#keepAlive = {
      replyTimeoutMs: options.replyTimeoutMs ?? replyTimeoutOf(url, rawUrl) ?? 30_000,
      pingEveryMs: options.pingEveryMs ?? 25_000,
    };
  }

  /**
   * PUBLISH `payload` on `channel` (connecting first if needed). A failure
   * is not retried: events are best-effort.
   *
   * @param channel the channel
   * @param payload the message's bytes, or its ASCII text in pieces (copied
   *   straight into the connection's write buffer)
   * @throws {BrokerConnectionError} when Redis cannot be reached
   */
  publish(channel: string, payload: Uint8Array | readonly string[]): Promise<void> {
    this.#publisher ??= new RespConnection({ ...this.#settings, name: "celeriac-events" });
    let name = this.#channels.get(channel);
    if (!name) {
      if (this.#channels.size > 1000) this.#channels.clear();
      name = utf8.encode(channel);
      this.#channels.set(channel, name);
    }
    // Not an async function, which would hold the payload until the reply
    // (see RespConnection.publish).
    return this.#publisher.publish(name, payload).then(
      () => {},
      (err) => {
        throw respFailure(err, this.#rawUrl);
      },
    );
  }

  /**
   * PSUBSCRIBE to `pattern` on a connection of its own, subscribed again
   * after each reconnect (also after one that stopped answering its PINGs),
   * until `signal` aborts.
   *
   * @param pattern the channel pattern
   * @param onMessage called with each message's bytes (a view valid until it returns)
   * @param signal stops it
   * @throws {BrokerConnectionError} when the first connect fails
   */
  async subscribe(
    pattern: string,
    onMessage: (payload: Uint8Array) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const conn = new RespConnection({
      ...this.#settings,
      ...this.#keepAlive,
      name: "celeriac-fanout",
      patterns: [pattern],
      readBufferBytes: SUBSCRIBER_BUFFER,
      onPush: (push: RespValue[]) => {
        const payload = push[push.length - 1];
        if (payload instanceof Uint8Array) onMessage(payload);
      },
    });
    try {
      await conn.connect();
    } catch (err) {
      await conn.close();
      throw respFailure(err, this.#rawUrl);
    }
    if (signal.aborted) return await conn.close();
    this.#subscribers.add(conn);
    signal.addEventListener("abort", () => {
      this.#subscribers.delete(conn);
      void conn.close(0);
    }, { once: true });
  }

  /**
   * Close the publisher (after the replies due) and every subscriber (at
   * once: a subscriber's only replies due are its PINGs').
   */
  async close(): Promise<void> {
    const subscribers = [...this.#subscribers];
    const publisher = this.#publisher;
    this.#subscribers.clear();
    this.#publisher = null;
    await Promise.all([publisher?.close(), ...subscribers.map((c) => c.close(0))]);
  }
}
