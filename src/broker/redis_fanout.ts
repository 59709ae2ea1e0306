/**
 * Broadcasts on Redis as kombu's fanout exchanges do them: PUBLISH on the
 * channel `/<db>.<exchange>` (with `fanout_patterns`, `/<routing key>`
 * appended) and PSUBSCRIBE on a connection of its own, the subscriber's
 * queue bound in `_kombu.binding.<exchange>` so that Python tools see it;
 * and the remote-control replies, a direct exchange read from a list.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Redis } from "ioredis";
import { Buffer } from "node:buffer";
import {
  decodeEnvelope,
  encodeEnvelopeBytes,
  encodeEnvelopePieces,
  type Envelope,
} from "../protocol/envelope.ts";
import { PIDBOX_REPLY_EXCHANGE } from "../protocol/control.ts";
import { EVENT_EXCHANGE } from "../protocol/events.ts";
import type { Message } from "../protocol/message.ts";
import type { SubscribeOptions, Subscription } from "./port.ts";
import type { RedisScope } from "./redis_commands.ts";
import { duplicateRedis, keepPinging, redisFailure } from "./redis_connection.ts";
import { bindingMember, bindingSet } from "./redis_keys.ts";
import { untilAborted } from "./sleep.ts";
import type { RespEvents } from "./resp_events.ts";
import { bulkText } from "./resp_strings.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

function fanoutChannel(scope: RedisScope, exchange: string): string {
  return scope.k(`/${scope.db}.${exchange}`);
}

/**
 * PUBLISH a kombu envelope on `/<db>.<exchange>`, or with a routing key on
 * `/<db>.<exchange>/<routing key>`, as kombu's fanout (with
 * `fanout_patterns`, Celery's default) does. The envelope goes to the
 * client as bytes: no JS string is built of it (a batch of task events is
 * tens of KB, sent hundreds of times a second); on the events' own RESP
 * connection its pieces are encoded straight into the write buffer.
 *
 * @example
 * ```ts ignore
 * import { broadcast } from "./redis_fanout.ts";
 * await broadcast(scope, "celeryev", event, "task.succeeded");
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param exchange the fanout exchange
 * @param message the message
 * @param routingKey the routing key (`""` for none)
 */
export function broadcast(
  scope: RedisScope,
  exchange: string,
  message: Message,
  routingKey: string,
): Promise<void> {
  const info = { exchange, routing_key: routingKey };
  const channel = fanoutChannel(scope, exchange) + (routingKey ? `/${routingKey}` : "");
  if (scope.events && exchange === EVENT_EXCHANGE) {
    // Not an async function: the envelope is framed now, and nothing keeps
    // the message or its pieces until Redis replies (see RespConnection.publish).
    try {
      return scope.events.publish(
        channel,
        encodeEnvelopePieces(message, info, crypto.randomUUID()),
      );
    } catch (err) {
      return Promise.reject(err);
    }
  }
  return publishRaw(scope, channel, message, info);
}

/** PUBLISH a message's envelope on the broker's connection. */
async function publishRaw(
  scope: RedisScope,
  channel: string,
  message: Message,
  info: { exchange: string; routing_key: string },
): Promise<void> {
  const raw = encodeEnvelopeBytes(message, info, crypto.randomUUID());
  await scope.run(() =>
    scope.client.publish(channel, Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength))
  );
}

/**
 * Subscribe to `/<db>.<exchange>` on a connection of its own, and bind the
 * subscriber's queue to the exchange as kombu does (so Python tools see it);
 * replies (`reply.celery.pidbox`) are read from their list instead. Both
 * stop, and unbind, when `options.signal` aborts.
 *
 * @example
 * ```ts ignore
 * import { subscribe } from "./redis_fanout.ts";
 * await subscribe(scope, "celeryev", (m) => console.log(m.headers), {
 *   bindingKey: "task.#",
 *   signal: AbortSignal.timeout(10_000),
 * });
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param exchange the exchange
 * @param onMessage called with each message
 * @param options binding key, queue and signal
 * @returns for replies, a {@link Subscription} whose flush reads the list up to a fence
 */
export async function subscribe(
  scope: RedisScope,
  exchange: string,
  onMessage: (message: Message) => void,
  options: SubscribeOptions,
): Promise<Subscription | void> {
  if (exchange === PIDBOX_REPLY_EXCHANGE) return subscribeReplies(scope, onMessage, options);
  const client = scope.client;
  const key = options.bindingKey ?? "";
  const channel = fanoutChannel(scope, exchange) + (key ? `/${key.replaceAll("#", "*")}` : "");
  const binding = options.queue ? bindingMember(key, options.queue) : null;
  if (scope.events) {
    return await subscribeResp(scope, scope.events, exchange, channel, binding, onMessage, options);
  }
  const conn = duplicateRedis(client, scope.rawUrl, "celeriac-fanout") as unknown as Redis;
  keepPinging(conn);
  conn.on(
    "error",
    (err: Error) => log.debug("Fanout connection: {error}", { error: err.message }),
  );
  conn.on(
    "pmessage",
    (_pattern: string, _channel: string, raw: string) => deliver(raw, channel, onMessage),
  );
  let stopped: Promise<void> | null = null;
  const stop = () =>
    stopped ??= (async () => {
      if (binding) {
        await client.srem(scope.k(bindingSet(exchange)), binding).catch(() => {});
      }
      conn.disconnect();
    })();
  if (options.signal.aborted) return await stop();
  // Aborted while subscribing (a shutdown that stopped waiting for it): unbound at once (the
  // SREM follows the SADD on the same connection), and nothing is subscribed after the SADD.
  const onAbort = () => void stop();
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await scope.run(async () => {
      if (binding) await client.sadd(scope.k(bindingSet(exchange)), binding);
      if (!options.signal.aborted) await conn.psubscribe(channel);
    });
  } catch (err) {
    options.signal.removeEventListener("abort", onAbort);
    await stop();
    if (options.signal.aborted) return;
    throw redisFailure(conn, scope.rawUrl, err);
  }
}

/**
 * A fanout exchange on a single server (the events, the remote-control
 * broadcasts): PSUBSCRIBE through {@link RespEvents} (its own connection,
 * subscribed again after a reconnect), the messages decoded from the
 * socket's buffer.
 */
async function subscribeResp(
  scope: RedisScope,
  events: RespEvents,
  exchange: string,
  channel: string,
  binding: string | null,
  onMessage: (message: Message) => void,
  { signal }: SubscribeOptions,
): Promise<void> {
  const bindings = scope.k(bindingSet(exchange));
  const unbind = () => binding ? scope.client.srem(bindings, binding).catch(() => 0) : 0;
  if (binding) {
    await scope.run(() => scope.client.sadd(bindings, binding));
    // Aborted during the SADD: a listener added now would never run.
    if (signal.aborted) return void await unbind();
    signal.addEventListener("abort", unbind, { once: true });
  }
  try {
    await events.subscribe(
      channel,
      (payload) => deliver(bulkText(payload), channel, onMessage),
      signal,
    );
  } catch (err) {
    signal.removeEventListener("abort", unbind);
    await unbind();
    throw err;
  }
}

/** Decode a broadcast and hand it on; a malformed one is logged and dropped. */
function deliver(raw: string, channel: string, onMessage: (message: Message) => void): void {
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
}

/** Longest wait for the reply reader's connection before a request goes out. */
const READER_UP_WAIT_MS = 2000;

/** What a flush pushes to the reply list: never a kombu envelope (those are JSON objects). */
const FENCE = "celeriac-replies-fence:";

/**
 * Replies on the direct exchange `reply.celery.pidbox`: bind the reply
 * list to the routing key (SADD, as kombu does) and pop it until `signal`
 * aborts; then unbind and delete it. Resolves once the popping connection
 * is up, with a flush: a fence LPUSHed to the list, the flush resolving
 * when the reader pops it, so every reply that reached the list before is
 * handed over, once (the list is FIFO, a pop takes an entry once); no
 * command is added to the reader's, and none waits for its BRPOP timeout.
 */
async function subscribeReplies(
  scope: RedisScope,
  onMessage: (message: Message) => void,
  options: SubscribeOptions,
): Promise<Subscription> {
  const client = scope.client;
  const key = options.bindingKey ?? "";
  const queue = options.queue ?? `${key}.${PIDBOX_REPLY_EXCHANGE}`;
  const bindings = scope.k(bindingSet(PIDBOX_REPLY_EXCHANGE));
  const member = bindingMember(key, queue);
  /** Flushes waiting for their fence to be popped, by fence. */
  const fences = new Map<string, () => void>();
  const flush = async () => {
    if (options.signal.aborted) return;
    const fence = FENCE + crypto.randomUUID();
    const popped = new Promise<void>((resolve) => fences.set(fence, resolve));
    // On the broker's connection, as the DEL when the subscription ends:
    // that DEL comes after this LPUSH, so no fence outlives the list.
    try {
      await scope.run(() => client.lpush(scope.k(queue), fence));
      await popped;
    } finally {
      fences.delete(fence);
    }
  };
  await scope.run(() => client.sadd(bindings, member));
  const conn = duplicateRedis(client, scope.rawUrl, "celeriac-replies", true);
  const undo = () => {
    client.srem(bindings, member).catch(() => {});
    client.del(scope.k(queue)).catch(() => {});
    conn.disconnect();
    for (const popped of fences.values()) popped();
  };
  // Aborted during the SADD: a listener added now would never run.
  if (options.signal.aborted) {
    undo();
    return { flush };
  }
  // Unbind at once on abort (before the app may close its connection).
  options.signal.addEventListener("abort", undo, { once: true });
  // Resolve once the reader's connection is up (or READER_UP_WAIT_MS has
  // passed), so that its first BRPOP is waiting before the caller sends its
  // request: a reply is then pushed to this process as it comes, not fetched
  // after connecting. A failure here is the loop's to retry, as later ones.
  const up = conn.ping().then(() => {}, (err: Error) => {
    log.debug("Connecting the reply reader: {error}", { error: err.message });
  });
  await untilAborted(up, AbortSignal.timeout(READER_UP_WAIT_MS));
  const loop = async () => {
    while (!options.signal.aborted) {
      const got = await conn.brpop(scope.k(queue), 1).catch((err: Error) => {
        log.debug("Reading replies: {error}", { error: err.message });
        return new Promise<null>((r) => setTimeout(() => r(null), 500));
      });
      if (!got) continue;
      if (got[1].startsWith(FENCE)) {
        fences.get(got[1])?.();
        continue;
      }
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
  return { flush };
}
