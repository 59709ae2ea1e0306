/**
 * Which sends on a confirm channel RabbitMQ routed, refused or discarded
 * when it closed the channel for one send's fault: a ledger of the sends
 * not confirmed yet, in write order, read against the close's reply.
 *
 * The rule. RabbitMQ handles a channel's frames in order and closes it at
 * the first send it refuses, so the sends written before that one were
 * routed (only their confirms were lost with the channel) and the ones
 * written after it were discarded. The reply names the refused send only
 * by what it refused:
 *
 * - its body size (406 "message size N is larger than configured max size
 *   M"): the limit is the same for every send on the channel, so the first
 *   unconfirmed send of size N is the refused one (`refused`); those
 *   before it were routed (`sent`); of those after it, each over the limit
 *   (larger than M; N or more when the reply names no M) would be refused
 *   alone too (`refused`), and the others were discarded (`discarded`:
 *   publish again);
 * - its exchange (404 `NOT_FOUND`, 403 `ACCESS_REFUSED`; `amq.default` for
 *   the default exchange, noted `""`): the unconfirmed sends to it are the
 *   candidates. Exactly one: it is the refused one, split as above (none
 *   after it refused). Several (the exchange deleted or its permission
 *   revoked while they were in flight): any of them may be the refused one,
 *   so every send from the first candidate to the last is `unknown` — it
 *   may have been routed, and publishing it again could send it twice —
 *   while those before the first are `sent` and those after the last
 *   `discarded`;
 * - nothing in flight (no unconfirmed send matches): `null`, nothing is
 *   known.
 *
 * The limit of `sent`. It means routed: handed to its queues' processes,
 * not accepted by them. A queue that rejects a message after routing — one
 * with `x-overflow` `reject-publish` or `reject-publish-dlx` that is full, a
 * quorum queue that cannot commit it — answers with a nack, and that nack
 * goes to the closed channel: a message sent to such a queue just before
 * a refused one on the same channel can be dropped without an error. It
 * is not published again (in the common case it was enqueued, and a second
 * copy would run twice); nothing on the client tells the two apart.
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
  #verdict: Verdict | null | undefined = undefined;

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
   * `null` when the reply names no unconfirmed send. It is decided once, at
   * the first call, while every unconfirmed send is still noted.
   *
   * @param close the channel's close error (amqplib's, with RabbitMQ's `code`)
   * @param seq the send's number
   * @returns its fate, or null
   */
  fate(close: Error, seq: number): SendFate | null {
    if (this.#verdict === undefined) this.#verdict = this.#decide(close);
    const verdict = this.#verdict;
    if (verdict === null) return null;
    if (seq < verdict.first) return "sent";
    if (verdict.refused.has(seq)) return "refused";
    if (seq > verdict.last) return "discarded";
    return "unknown";
  }

  /** What `close` made of the unsettled sends, or null when it names none. */
  #decide(close: Error): Verdict | null {
    const code = (close as Error & { code?: number }).code ?? 0;
    const text = closeReason(close);
    if (code === 406) {
      const over = /message size (\d+) is larger than(?: configured max size (\d+))?/.exec(text);
      return over ? this.#oversized(Number(over[1]), over[2]) : null;
    }
    if (code !== 404 && code !== 403) return null;
    let exchange = /exchange '(.*)' in vhost '/s.exec(text)?.[1];
    if (exchange === undefined) return null;
    // RabbitMQ names the default exchange (published to as "") amq.default.
    if (exchange === "amq.default") exchange = "";
    let verdict: Verdict | null = null;
    for (const [seq, w] of this.#unsettled) {
      if (w.exchange !== exchange) continue;
      if (verdict === null) verdict = { first: seq, last: seq, refused: new Set() };
      else verdict.last = seq;
    }
    // One candidate: it is the refused one.
    if (verdict !== null && verdict.first === verdict.last) verdict.refused.add(verdict.first);
    return verdict;
  }

  /**
   * The first unsettled send of `size` refused, with each later one over
   * the limit (`max` bytes when the reply names it, else `size` or more).
   */
  #oversized(size: number, max: string | undefined): Verdict | null {
    const limit = max === undefined ? size - 1 : Number(max);
    let verdict: Verdict | null = null;
    for (const [seq, w] of this.#unsettled) {
      if (verdict === null) {
        if (w.size === size) verdict = { first: seq, last: seq, refused: new Set([seq]) };
      } else if (w.size > limit) verdict.refused.add(seq);
    }
    return verdict;
  }
}

/**
 * What a close made of the unsettled sends: before `first` routed, from
 * `first` to `last` unknown unless `refused`, after `last` discarded
 * unless `refused`.
 */
interface Verdict {
  readonly first: number;
  last: number;
  readonly refused: Set<number>;
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
