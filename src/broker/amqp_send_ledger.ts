/**
 * Which sends on a confirm channel RabbitMQ routed, refused or discarded
 * when it closed the channel for one send's fault: a ledger of the sends
 * not confirmed yet, in write order, read against the close's reply.
 *
 * The rule. RabbitMQ handles a channel's frames in order and closes it at
 * the first send it refuses, so the sends written before that one were
 * routed (only their confirms were lost with the channel) and the ones
 * written after it were discarded. The reply names the refused send only
 * by what it refused: the exchange (404 `NOT_FOUND`, 403 `ACCESS_REFUSED`;
 * `amq.default` for the default exchange, noted `""`) or the body size
 * (406 "message size N is larger than ..."). The unconfirmed sends that
 * match it are the candidates:
 *
 * - exactly one: it is the refused one (`refused`); those before it were
 *   routed (`sent`), those after it discarded (`discarded`: publish again);
 * - several (the exchange deleted or its permission revoked while they
 *   were in flight, or two bodies of the same size): any of them may be the
 *   refused one, so every send from the first candidate to the last is
 *   `unknown` — it may have been routed, and publishing it again could send
 *   it twice — while those before the first are `sent` and those after the
 *   last `discarded`;
 * - none (the reply names no send in flight): `null`, nothing is known.
 *
 * @module
 */

import type { ConfirmChannel } from "amqplib";
import { ExchangeNotFoundError } from "./errors.ts";
import { MessageRefusedError, MessageUnconfirmedError } from "./message_refused.ts";

/** What became of one send when RabbitMQ closed its channel (see the module's rule). */
export type SendFate = "sent" | "refused" | "unknown" | "discarded";

/** A send written on a confirm channel and not settled yet. */
interface Written {
  /** The exchange it was published to (`""`: the default one). */
  readonly exchange: string;
  /** Its body's length in bytes. */
  readonly size: number;
}

/**
 * A confirm channel's sends not settled yet, numbered in the order they
 * were written, and what RabbitMQ's close of the channel made of each.
 *
 * @example
 * ```ts
 * import { SendLedger } from "./amqp_send_ledger.ts";
 * const ledger = new SendLedger();
 * const a = ledger.written("", 10);
 * const big = ledger.written("", 200);
 * const b = ledger.written("", 10);
 * const close = Object.assign(
 *   new Error('Channel closed by server: 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - message size 200 is larger than configured max size 100"'),
 *   { code: 406 },
 * );
 * console.assert(ledger.fate(close, a) === "sent");
 * console.assert(ledger.fate(close, big) === "refused");
 * console.assert(ledger.fate(close, b) === "discarded");
 * ```
 */
export class SendLedger {
  #next = 0;
  readonly #unsettled = new Map<number, Written>();
  #range: { first: number; last: number } | null | undefined = undefined;

  /**
   * Note a send about to be written.
   *
   * @param exchange its exchange (`""`: the default one)
   * @param size its body's length in bytes
   * @returns its number (write order)
   */
  written(exchange: string, size: number): number {
    const seq = this.#next++;
    this.#unsettled.set(seq, { exchange, size });
    return seq;
  }

  /**
   * Forget a send once its outcome is known.
   *
   * @param seq its number
   */
  settled(seq: number): void {
    this.#unsettled.delete(seq);
  }

  /**
   * What RabbitMQ's `close` made of send `seq` (see the module's rule), or
   * `null` when the reply names no unconfirmed send. The candidates are
   * decided once, at the first call, while every unconfirmed send is still
   * noted.
   *
   * @param close the channel's close error (amqplib's, with RabbitMQ's `code`)
   * @param seq the send's number
   * @returns its fate, or null
   */
  fate(close: Error, seq: number): SendFate | null {
    this.#range ??= this.#candidates(close);
    const range = this.#range;
    if (range === null) return null;
    if (seq < range.first) return "sent";
    if (seq > range.last) return "discarded";
    return range.first === range.last ? "refused" : "unknown";
  }

  /** The first and last unsettled sends `close` may name, or null. */
  #candidates(close: Error): { first: number; last: number } | null {
    const code = (close as Error & { code?: number }).code ?? 0;
    const text = closeReason(close);
    let exchange = code === 404 || code === 403
      ? /exchange '(.*)' in vhost '/s.exec(text)?.[1]
      : undefined;
    // RabbitMQ names the default exchange (published to as "") amq.default.
    if (exchange === "amq.default") exchange = "";
    const size = code === 406 ? /message size (\d+) is larger than/.exec(text)?.[1] : undefined;
    let range: { first: number; last: number } | null = null;
    for (const [seq, w] of this.#unsettled) {
      if (
        (exchange !== undefined && w.exchange === exchange) ||
        (size !== undefined && w.size === Number(size))
      ) {
        if (range === null) range = { first: seq, last: seq };
        else range.last = seq;
      }
    }
    return range;
  }
}

const ledgers = new WeakMap<ConfirmChannel, SendLedger>();

/**
 * The send ledger of a confirm channel (one per channel, made on first use).
 *
 * @example
 * ```ts ignore
 * const ledger = ledgerOf(held.channel);
 * const seq = ledger.written("", message.body.byteLength);
 * ```
 *
 * @param channel the confirm channel
 * @returns its ledger
 */
export function ledgerOf(channel: ConfirmChannel): SendLedger {
  let ledger = ledgers.get(channel);
  if (!ledger) ledgers.set(channel, ledger = new SendLedger());
  return ledger;
}

/** RabbitMQ's text in amqplib's channel-close error. */
function closeReason(close: Error): string {
  return /with message "(.*)"$/s.exec(close.message)?.[1] ?? close.message;
}

/**
 * The error of a send RabbitMQ refused by closing its channel: a 404 is its
 * missing exchange.
 *
 * @example
 * ```ts ignore
 * throw refusal(held.serverClose!, "", "celery");
 * ```
 *
 * @param close the channel's close error
 * @param exchange the send's exchange
 * @param routingKey the send's routing key
 * @returns the error to reject that send with
 */
export function refusal(
  close: Error,
  exchange: string,
  routingKey: string,
): MessageRefusedError | ExchangeNotFoundError {
  const code = (close as Error & { code?: number }).code ?? 0;
  if (code === 404) return new ExchangeNotFoundError(exchange, routingKey);
  return new MessageRefusedError(exchange, routingKey, code, closeReason(close));
}

/**
 * The error of a send whose fate RabbitMQ's close left `unknown`.
 *
 * @example
 * ```ts ignore
 * throw unconfirmed(held.serverClose!, "", "celery");
 * ```
 *
 * @param close the channel's close error
 * @param exchange the send's exchange
 * @param routingKey the send's routing key
 * @returns the error to reject that send with
 */
export function unconfirmed(
  close: Error,
  exchange: string,
  routingKey: string,
): MessageUnconfirmedError {
  const code = (close as Error & { code?: number }).code ?? 0;
  return new MessageUnconfirmedError(exchange, routingKey, code, closeReason(close));
}
