/**
 * Consuming one queue for as long as the caller wants, across reconnects:
 * on every new connection the queue is set up again (declared, bound) and
 * consumed without acknowledgements. Used by broadcast subscriptions and
 * by the rpc:// backend's reply queue. When RabbitMQ cancels the consumer
 * (the queue was deleted), the caller is told and the queue is set up and
 * consumed again, as after a reconnect.
 *
 * @module
 */

import type { Channel } from "amqplib";
import type { Message } from "../protocol/message.ts";
import { HeldChannel } from "./amqp_channel.ts";
import type { AmqpConnection, AmqpSession } from "./amqp_connection.ts";
import { fromIncoming } from "./amqp_message.ts";
import { closeWait, sleep } from "./sleep.ts";

/**
 * The first wait, in milliseconds, before a queue consumed across
 * reconnects (subscriptions, rpc:// reply queues) is set up again after a
 * failure; doubled for each further failure in a row.
 *
 * @example
 * ```ts ignore
 * consumeAcrossReconnects({ ...options, retryDelayMs: CONSUME_RETRY_DELAY_MS });
 * ```
 */
export const CONSUME_RETRY_DELAY_MS = 1000;

/**
 * Options of {@link consumeAcrossReconnects}.
 *
 * @example Consuming a reply queue
 * ```ts ignore
 * const options: ConsumeAcrossReconnectsOptions = {
 *   connection,
 *   signal: closing.signal,
 *   setUp: async (_session, channel) => {
 *     await channel.assertQueue("replies", { autoDelete: true });
 *     return "replies";
 *   },
 *   onMessage: (m) => console.log(m.headers),
 *   onRetry: (err) => console.warn(`consuming failed: ${err.message}`),
 *   onCancel: (queue) => console.warn(`${queue} was deleted; declaring it again`),
 * };
 * ```
 */
export interface ConsumeAcrossReconnectsOptions {
  /** The connection whose sessions are used. */
  connection: AmqpConnection;
  /** Stops consuming. */
  signal: AbortSignal;
  /** Declare what the queue needs on a new session; resolves with the queue to consume. */
  setUp(session: AmqpSession, channel: Channel): Promise<string>;
  /** Receives every message. */
  onMessage(message: Message): void;
  /** Told when consuming failed after it had worked once (it is set up again). */
  onRetry(err: Error): void;
  /**
   * Told when RabbitMQ cancelled the consumer (the queue was deleted, by hand
   * or by a policy); the queue is then set up and consumed again. Default:
   * nothing is told.
   */
  onCancel?(queue: string): void;
  /**
   * Milliseconds to wait before setting up again after a failure; each
   * further failure in a row doubles it, up to `maxRetryDelayMs`, and a
   * successful consume starts again from this. Default 0 (no wait).
   */
  retryDelayMs?: number;
  /** The longest wait between failed set-ups, in milliseconds. Default 30000. */
  maxRetryDelayMs?: number;
}

/**
 * Consume a queue until `signal` aborts, setting it up again on every new
 * connection.
 *
 * @example
 * ```ts ignore
 * const { ready, done } = consumeAcrossReconnects(options);
 * await ready; // consuming; rejects if the first set-up failed on a live connection
 * ```
 *
 * @param options connection, set-up and where messages go
 * @returns `ready`: settles once consuming first started (or failed, or was
 * stopped); `done`: resolves when consuming has stopped for good; `flush`:
 * resolves once the deliveries RabbitMQ sent so far were handed to
 * `onMessage` (a round trip on the consuming channel)
 */
export function consumeAcrossReconnects(
  options: ConsumeAcrossReconnectsOptions,
): { ready: Promise<void>; done: Promise<void>; flush: () => Promise<void> } {
  const { connection, signal, setUp, onMessage, onRetry } = options;
  const { promise: ready, resolve, reject } = Promise.withResolvers<void>();
  let consuming: { channel: Channel; queue: string } | null = null;
  const firstDelay = options.retryDelayMs ?? 0;
  const maxDelay = options.maxRetryDelayMs ?? 30_000;
  const done = (async () => {
    let first = true;
    let delay = firstDelay;
    while (!signal.aborted) {
      let session: AmqpSession;
      try {
        session = await connection.session({ signal });
      } catch {
        break;
      }
      let held: HeldChannel | null = null;
      try {
        held = await HeldChannel.open(session);
        // Stopped while the channel opened or the queue was set up (a shutdown that stopped
        // waiting for it): nothing more is declared, nothing consumed; the channel is closed.
        if (signal.aborted) break;
        const queue = await setUp(session, held.channel);
        if (signal.aborted) break;
        // amqplib hands a Basic.Cancel from the server to the callback as `null`.
        const cancelled = Promise.withResolvers<void>();
        let wasCancelled = false;
        await held.channel.consume(queue, (m) => {
          if (m) onMessage(fromIncoming(m).message);
          else {
            wasCancelled = true;
            cancelled.resolve();
          }
        }, { noAck: true });
        first = false;
        delay = firstDelay;
        resolve();
        const channel = held.channel;
        consuming = { channel, queue };
        await new Promise<void>((ended) => {
          const any = AbortSignal.any([signal, session.lost]);
          any.addEventListener("abort", () => ended(), { once: true });
          if (any.aborted) ended();
          channel.once("close", () => ended());
          cancelled.promise.then(() => ended());
        });
        if (wasCancelled && !signal.aborted) options.onCancel?.(queue);
      } catch (err) {
        if (first && !session.lost.aborted) {
          reject(err);
          return;
        }
        onRetry(err as Error);
        await sleep(delay, signal);
        delay = Math.min(maxDelay, delay * 2);
      } finally {
        consuming = null;
        // A server that stopped answering never sends the Close-Ok: not waited for past
        // CLOSE_WAIT_MS (the connection's close drops the socket).
        if (held) await closeWait(held.close());
      }
    }
    resolve();
  })();
  // RabbitMQ answers a channel's methods after what it sent on it before, and
  // amqplib reads frames in order: once the answer is in, so are those deliveries.
  const flush = async () => {
    await consuming?.channel.checkQueue(consuming.queue).catch(() => {});
  };
  return { ready, done, flush };
}
