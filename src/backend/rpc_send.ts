/**
 * The sending side of the rpc:// result backend: each result is published
 * to its task's reply queue, declared first (once per connection) as
 * Celery's client declares it, on a confirm channel kept open, and sent
 * again after a lost connection until the publish timeout.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ConfirmChannel } from "amqplib";
import { HeldChannel, LazyChannel } from "../broker/amqp_channel.ts";
import {
  publishSimple,
  publishSimpleBatch,
  simpleProperties,
  type SimplePublish,
} from "../broker/amqp_fast_publish.ts";
import {
  type AmqpConnection,
  type AmqpSession,
  isChannelError,
} from "../broker/amqp_connection.ts";
import { toContent, toPublishOptions } from "../broker/amqp_message.ts";
import { afterClose } from "../broker/amqp_publish.ts";
import { ledgerOf, type SendLedger } from "../broker/amqp_send_ledger.ts";
import { toAmqpTable } from "../broker/amqp_table.ts";
import { type QueueDeclaration, replyQueueDeclaration } from "../broker/amqp_topology.ts";
import { MessageRefusedError, MessageUnconfirmedError } from "../broker/message_refused.ts";
import type { Message } from "../protocol/message.ts";
import type { StoreEntry } from "./port.ts";
import { ResultsRefusedError } from "./rpc_errors.ts";
import { rpcResultMessage, rpcResultPublish } from "./rpc_message.ts";

const log = getLogger(["celeriac", "backend", "rpc"]);

/** What {@link RpcSender} publishes with. */
export interface RpcSendOptions {
  /** Seconds an unused reply queue lives (`x-expires`); 0: forever. */
  expires: number;
  /** Send results as persistent messages. */
  persistent: boolean;
  /** How long a publish waits for a lost connection, in milliseconds. */
  publishTimeoutMs: number;
  /** Aborted when the backend closes: a publish is not sent again. */
  closing: AbortSignal;
}

/**
 * Publishes results and drain markers to reply queues for an
 * the rpc:// result backend (rpc.ts).
 *
 * @example
 * ```ts ignore
 * const sender = new RpcSender(conn, { expires: 86400, persistent: false, publishTimeoutMs: 30_000, closing });
 * await sender.store([{ taskId, replyTo: oid, status: "SUCCESS", meta }]);
 * ```
 */
export class RpcSender {
  readonly #conn: AmqpConnection;
  readonly #expires: number;
  readonly #persistent: boolean;
  readonly #publishTimeoutMs: number;
  readonly #closing: AbortSignal;
  readonly #publisher = new LazyChannel((s) => HeldChannel.openConfirm(s));
  /** The publisher's channel last handed out (used while it is open, on its session). */
  #ready: HeldChannel<ConfirmChannel> | null = null;
  readonly #declared = new Map<string, number>();
  readonly #declaring = new Map<string, Promise<void>>();

  /**
   * @param conn the backend's connection
   * @param options expiry, persistence, publish timeout, the backend's closing signal
   */
  constructor(conn: AmqpConnection, options: RpcSendOptions) {
    this.#conn = conn;
    this.#expires = options.expires;
    this.#persistent = options.persistent;
    this.#publishTimeoutMs = options.publishTimeoutMs;
    this.#closing = options.closing;
  }

  /**
   * Declare `name` again on its next use (RabbitMQ deleted it).
   *
   * @param name the reply queue
   */
  forgetReplyQueue(name: string): void {
    this.#declared.delete(name);
  }

  /** Declare a reply queue once per connection; one declared otherwise by its owner is used as is. */
  declareReplyQueue(session: AmqpSession, q: QueueDeclaration): Promise<void> {
    if (this.#declared.get(q.name) === session.epoch) return Promise.resolve();
    const key = `${session.epoch}:${q.name}`;
    let pending = this.#declaring.get(key);
    if (!pending) {
      pending = this.#assertReplyQueue(session, q).finally(() => this.#declaring.delete(key));
      this.#declaring.set(key, pending);
    }
    return pending;
  }

  /** Declare a reply queue on a channel of its own (a refused declaration closes it). */
  async #assertReplyQueue(session: AmqpSession, q: QueueDeclaration): Promise<void> {
    const held = await HeldChannel.open(session);
    try {
      await held.channel.assertQueue(q.name, {
        durable: q.durable,
        autoDelete: q.autoDelete,
        exclusive: q.exclusive,
        arguments: toAmqpTable(q.arguments),
      });
    } catch (err) {
      if (!isChannelError(err, 406)) throw err;
      log.debug("Reply queue {queue} exists with other arguments; using it", { queue: q.name });
    } finally {
      await held.close();
    }
    this.#declared.set(q.name, session.epoch);
  }

  /**
   * Publish a message to a reply queue (declared first, once per connection),
   * sent again after a lost connection until `deadline`. When RabbitMQ
   * closed the shared channel for one send's fault, its reply decides
   * (amqp_send_ledger.ts): sent before the refused one, it was routed;
   * after it, it is refused too when over the size limit that refused that
   * one, else sent again alone on a channel of its own; when the reply names
   * no send in flight, sent again alone too.
   *
   * @throws {MessageRefusedError} when RabbitMQ refused this message itself
   * @throws {MessageUnconfirmedError} when the reply leaves unknown whether it was routed
   */
  async publish(
    replyTo: string,
    message: Message,
    deadline = Date.now() + this.#publishTimeoutMs,
  ): Promise<void> {
    while (true) {
      // The live session and channel without awaiting them (one async frame per result, not three).
      const session = this.#conn.current ??
        await this.#conn.session({ timeoutMs: this.#publishTimeoutMs });
      let held: HeldChannel<ConfirmChannel> | null = null;
      let ledger: SendLedger | null = null;
      let seq = -1;
      try {
        if (this.#declared.get(replyTo) !== session.epoch) {
          await this.declareReplyQueue(session, replyQueueDeclaration(replyTo, this.#expires));
        }
        const ready = this.#ready;
        held = ready?.open && ready.session === session
          ? ready
          : (this.#ready = await this.#publisher.get(session));
        const channel = held.channel;
        ledger = ledgerOf(channel);
        seq = ledger.written("", message.body.byteLength);
        await new Promise<void>((resolve, reject) => {
          const confirmed = (err: unknown) =>
            err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve();
          const simple = simpleProperties(message);
          if (simple) publishSimple(channel, "", replyTo, message.body, simple, confirmed);
          else {
            channel.publish(
              "",
              replyTo,
              toContent(message.body),
              toPublishOptions(message),
              confirmed,
            );
          }
        });
        return;
      } catch (err) {
        if (!session.lost.aborted && held?.serverClose && ledger) {
          return await resultAfterClose(session, held.serverClose, ledger, seq, replyTo, message);
        }
        if (!session.lost.aborted || Date.now() > deadline || this.#closing.aborted) {
          throw err;
        }
      } finally {
        ledger?.settled(seq);
      }
    }
  }

  /**
   * Send each state to its task's reply queue (`entry.replyTo`); entries
   * without one are not sent, as in Celery.
   *
   * @throws {ResultsRefusedError} when RabbitMQ refused some (each alone); the others were sent
   */
  async store(entries: readonly StoreEntry[]): Promise<void> {
    if (await this.#storeBatch(entries)) return;
    await refusedOf(
      entries,
      entries.map((e) => {
        if (!e.replyTo) {
          log.debug("Task {taskId} has no reply_to: its {status} is not sent", {
            taskId: e.taskId,
            status: e.status,
          });
          return;
        }
        const message = rpcResultMessage(e.correlationId ?? e.taskId, e.meta, {
          persistent: this.#persistent,
        });
        return this.publish(e.replyTo, message);
      }),
    );
  }

  /**
   * Send the entries in one write when they all can go at once: the
   * session, publisher channel and every reply queue ready, each a simple
   * publish. False when nothing was sent (`store` then sends them one by
   * one). A publish that fails because the connection was lost is sent
   * again, one by one, until the publish timeout; another failure throws.
   */
  async #storeBatch(entries: readonly StoreEntry[]): Promise<boolean> {
    const session = this.#conn.current;
    const ready = this.#ready;
    if (!session || !ready?.open || ready.session !== session) return false;
    const publishes: SimplePublish[] = [];
    for (const e of entries) {
      if (!e.replyTo || this.#declared.get(e.replyTo) !== session.epoch) return false;
      publishes.push(
        rpcResultPublish(e.correlationId ?? e.taskId, e.meta, e.replyTo, {
          persistent: this.#persistent,
        }),
      );
    }
    const deadline = Date.now() + this.#publishTimeoutMs;
    const failed: number[] = [];
    let error: unknown;
    const { promise, resolve } = Promise.withResolvers<void>();
    let left = publishes.length;
    const ledger = ledgerOf(ready.channel);
    const seqs = publishes.map((p) => ledger.written("", p.body.byteLength));
    try {
      const sent = publishSimpleBatch(ready.channel, "", publishes, (i, err) => {
        if (err) {
          failed.push(i);
          error ??= err;
        } else ledger.settled(seqs[i]);
        if (--left === 0) resolve();
      });
      if (!sent) return false;
      await promise;
      if (failed.length === 0) return true;
      const close = session.lost.aborted ? null : ready.serverClose;
      if (!close && (!session.lost.aborted || Date.now() > deadline || this.#closing.aborted)) {
        throw error instanceof Error ? error : new Error(String(error));
      }
      await refusedOf(
        failed.map((i) => entries[i]),
        failed.map((i) => {
          const e = entries[i];
          const message = rpcResultMessage(e.correlationId ?? e.taskId, e.meta, {
            persistent: this.#persistent,
          });
          // RabbitMQ closed the channel for one send's fault: its reply tells which to send again.
          return close
            ? resultAfterClose(session, close, ledger, seqs[i], e.replyTo!, message)
            : this.publish(e.replyTo!, message, deadline);
        }),
      );
      return true;
    } finally {
      for (const seq of seqs) ledger.settled(seq);
    }
  }
}

/**
 * A result whose confirm RabbitMQ's close of the shared channel `close`
 * lost, as the close's reply decides ({@link afterClose}; a refused result's
 * FAILURE goes in its place); when the reply names no send in flight, sent
 * again alone.
 */
function resultAfterClose(
  session: AmqpSession,
  close: Error,
  ledger: SendLedger,
  seq: number,
  replyTo: string,
  message: Message,
): Promise<void> {
  return afterClose(session, close, ledger.fate(close, seq) ?? "discarded", "", replyTo, message);
}

/**
 * Wait for every send; those RabbitMQ refused (each alone) are thrown
 * together, another failure as it is. One whose fate RabbitMQ's reply left
 * unknown is logged and not sent again (nor a FAILURE in its place): it may
 * have been delivered, and a second message would reach its client. That
 * takes a 403/404 naming the default exchange, which every result goes
 * through: a FAILURE would be refused as well.
 */
async function refusedOf(
  entries: readonly StoreEntry[],
  sends: readonly (Promise<void> | undefined)[],
): Promise<void> {
  const settled = await Promise.allSettled(sends);
  const refused: StoreEntry[] = [];
  let first: MessageRefusedError | null = null;
  for (const [i, r] of settled.entries()) {
    if (r.status === "fulfilled") continue;
    if (r.reason instanceof MessageUnconfirmedError) {
      log.error("The {status} result of task {taskId} may not have been sent: {error}", {
        status: entries[i].status,
        taskId: entries[i].taskId,
        error: r.reason.message,
      });
      continue;
    }
    if (!(r.reason instanceof MessageRefusedError)) throw r.reason;
    refused.push(entries[i]);
    first ??= r.reason;
  }
  if (first) throw new ResultsRefusedError(refused, first);
}
