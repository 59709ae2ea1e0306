/**
 * The commands a {@link RespConnection} (resp_connection.ts) has written and
 * not yet had a reply for, in the order they were sent: each reply settles
 * the oldest (copied out of the read buffer, or turned into a value by the
 * command's decoder while it is still a view of it), and a dropped
 * connection fails them all. Pure logic, apart from the socket.
 *
 * @module
 */

import { copyReply, RedisReplyError, type RespValue } from "./resp_reader.ts";

/**
 * Turns a reply into what the caller wants while its bulk strings are still
 * views of the read buffer (valid until it returns: copy or decode them).
 *
 * @example
 * ```ts
 * import type { ReplyDecoder } from "./resp_pending.ts";
 * const count: ReplyDecoder<number> = (reply) => Number(reply);
 * ```
 */
export type ReplyDecoder<T> = (reply: RespValue) => T;

interface Waiter {
  // deno-lint-ignore no-explicit-any
  resolve(v: any): void;
  reject(e: Error): void;
  decode?: ReplyDecoder<unknown>;
  /** The reply, when an array, goes to `decode` as one view of its RESP bytes. */
  whole?: boolean;
}

/**
 * The queue of commands waiting for their replies, oldest first.
 *
 * @example
 * ```ts
 * import { PendingReplies } from "./resp_pending.ts";
 * const pending = new PendingReplies();
 * const reply = pending.add((v) => Number(v) * 2);
 * pending.settle(21, false); // true: a command was waiting for it
 * await reply; // 42
 * ```
 */
export class PendingReplies {
  #waiters: Waiter[] = [];
  #head = 0;
  #idle: (() => void) | null = null;

  /** How many commands wait for a reply. */
  get size(): number {
    return this.#waiters.length - this.#head;
  }

  /**
   * Wait for the reply of a command just written.
   *
   * @param decode turns the reply into the value resolved (else it is copied)
   * @param whole the reply is an array that `decode` gets as one view of its RESP bytes
   * @returns what `decode` returns, or the copied reply
   */
  add<T = RespValue>(decode?: ReplyDecoder<T>, whole?: boolean): Promise<T> {
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject, decode, whole }));
  }

  /** Whether the next reply goes whole to its waiter (`add`'s `whole`). */
  nextWantsWhole(): boolean {
    return this.#waiters[this.#head]?.whole === true;
  }

  /**
   * Settle the oldest command with its reply: an error reply rejects it, a
   * reply not whole where one was expected rejects it with a `TypeError`,
   * and what its decoder throws rejects it.
   *
   * @param v the reply (its bulk strings views of the read buffer)
   * @param whole whether `v` is an array's RESP bytes in one view
   * @returns false when no command waits for a reply
   */
  settle(v: RespValue, whole: boolean): boolean {
    if (this.#head === this.#waiters.length) return false;
    const w = this.#waiters[this.#head++];
    if (this.#head === this.#waiters.length) this.#clear();
    if (v instanceof RedisReplyError) w.reject(v);
    else if (w.whole && !whole) {
      w.reject(new TypeError(`expected an array reply, got ${kindOf(v)}`));
    } else if (!w.decode) w.resolve(copyReply(v));
    else {
      try {
        w.resolve(w.decode(v));
      } catch (err) {
        w.reject(err as Error);
      }
    }
    return true;
  }

  /**
   * Fail every command waiting.
   *
   * @param err the error they reject with
   */
  failAll(err: Error): void {
    const waiters = this.#waiters.slice(this.#head);
    this.#clear();
    for (const w of waiters) w.reject(err);
  }

  /**
   * Resolves once no command waits any more (the last reply, or
   * {@link failAll}). For one caller (a close): a later call leaves an
   * earlier one unsettled.
   */
  whenIdle(): Promise<void> {
    return new Promise<void>((r) => this.#idle = r);
  }

  #clear(): void {
    this.#waiters = [];
    this.#head = 0;
    this.#idle?.();
    this.#idle = null;
  }
}

/** A reply's kind, for the error of a command that expected an array. */
function kindOf(v: RespValue): string {
  if (v === null) return "nil";
  return v instanceof Uint8Array ? "a bulk string" : typeof v;
}
