/**
 * Group commit of the KV broker's publishes: the messages published while
 * a commit is in flight wait in an outbox and go together in the next
 * atomic commit (up to {@link PUBLISH_GROUP_MESSAGES} messages or
 * {@link PUBLISH_GROUP_BYTES} bytes), each publish settling with that commit.
 *
 * Every SQLite commit takes the file's write lock, which a worker process
 * on the same file needs to take and acknowledge. One commit per message
 * left a burst of concurrent publishes (thousands of `delay()` calls at
 * once) queued one commit each behind the lock, so they, and every other
 * KV call of the process, waited for tens of seconds; grouped, the burst
 * needs a hundredth of the commits.
 *
 * @module
 */

import { messageBytes, nextSeq, type StoredMessage } from "./kv_message.ts";
import { commitAtomic } from "./kv_store.ts";

/** The most messages in one grouped commit. */
export const PUBLISH_GROUP_MESSAGES = 100;

/**
 * The most message bytes in one grouped commit (Deno KV allows 800 KiB of
 * mutations per atomic operation); a message larger than this goes alone.
 */
export const PUBLISH_GROUP_BYTES = 400_000;

interface Pending {
  queue: string;
  stored: StoredMessage;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Where the outbox writes.
 *
 * @example
 * ```ts ignore
 * const target: OutboxTarget = {
 *   kv,
 *   messageKey: (queue, step) => ["celeriac", "q", queue, step, nextSeq(), crypto.randomUUID()],
 *   depthKey: (queue) => ["celeriac", "depth", queue],
 *   committed: () => shared.notify(),
 * };
 * ```
 */
export interface OutboxTarget {
  /** The database. */
  readonly kv: Deno.Kv;
  /** The key of a new waiting message, given its queue, priority step and sequence. */
  messageKey(queue: string, step: number, seq: bigint): Deno.KvKey;
  /** The depth counter of a queue. */
  depthKey(queue: string): Deno.KvKey;
  /** Called after each successful commit (wakes this process's takers). */
  committed(): void;
}

/**
 * Publishes grouped into atomic commits, one commit in flight at a time.
 *
 * @example
 * ```ts ignore
 * const outbox = new KvOutbox(target);
 * await outbox.put("celery", encodeMessage(message, "", "celery"));
 * ```
 */
export class KvOutbox {
  readonly #target: OutboxTarget;
  #waiting: Pending[] = [];
  #flushing: Promise<void> | null = null;

  /** @param target where to write */
  constructor(target: OutboxTarget) {
    this.#target = target;
  }

  /**
   * Add a message at the back of its queue.
   *
   * @param queue the queue
   * @param stored the message as stored
   * @returns settles when the commit holding the message does: resolves once
   *   it is stored, rejects with the commit's error (nothing of it stored)
   */
  put(queue: string, stored: StoredMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ queue, stored, resolve, reject });
      this.#flushing ??= this.#flush();
    });
  }

  /** Resolves when nothing waits and no commit is in flight. */
  idle(): Promise<void> {
    return this.#flushing ?? Promise.resolve();
  }

  async #flush(): Promise<void> {
    // Let the publishes of the current task join the first group.
    await Promise.resolve();
    while (this.#waiting.length > 0) {
      const group = this.#nextGroup();
      const op = this.#target.kv.atomic();
      const counts = new Map<string, bigint>();
      for (const p of group) {
        op.set(this.#target.messageKey(p.queue, p.stored.step, nextSeq()), p.stored);
        counts.set(p.queue, (counts.get(p.queue) ?? 0n) + 1n);
      }
      for (const [queue, n] of counts) op.sum(this.#target.depthKey(queue), n);
      try {
        await commitAtomic(op);
      } catch (err) {
        for (const p of group) p.reject(err);
        continue;
      }
      this.#target.committed();
      for (const p of group) p.resolve();
    }
    this.#flushing = null;
  }

  #nextGroup(): Pending[] {
    let bytes = 0;
    let n = 0;
    while (n < this.#waiting.length && n < PUBLISH_GROUP_MESSAGES) {
      bytes += messageBytes(this.#waiting[n].stored);
      if (n > 0 && bytes > PUBLISH_GROUP_BYTES) break;
      n++;
    }
    return this.#waiting.splice(0, n);
  }
}
