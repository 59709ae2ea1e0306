/**
 * Group commit of the KV broker's blind writes, publishes and
 * acknowledgements: what is put while a commit is in flight waits in an
 * outbox and goes together in the next atomic commit (up to
 * {@link PUBLISH_GROUP_MESSAGES} messages or {@link PUBLISH_GROUP_BYTES}
 * bytes, and {@link ACK_GROUP_KEYS} acknowledged deliveries), each call
 * settling with that commit. Neither kind checks anything, so grouping
 * cannot make one fail for another's sake.
 *
 * Every SQLite commit takes the file's write lock, which a worker process
 * on the same file needs to take and acknowledge, and costs a sync of the
 * write-ahead log (~2 ms on a virtual disk). One commit per message
 * left a burst of concurrent publishes (thousands of `delay()` calls at
 * once) queued one commit each behind the lock, so they, and every other
 * KV call of the process, waited for tens of seconds; grouped, the burst
 * needs a hundredth of the commits. A worker with late acknowledgement
 * settles batches of outcomes concurrently, so their acknowledgements often
 * meet in one commit.
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

/**
 * The most acknowledged deliveries (deleted keys) in one grouped commit
 * (Deno KV allows 1,000 mutations per atomic operation; a full group of
 * publishes uses 200 of them).
 */
export const ACK_GROUP_KEYS = 200;

type Pending =
  & { resolve: () => void; reject: (err: unknown) => void }
  & ({ queue: string; stored: StoredMessage } | { deletes: Deno.KvKey[] });

/**
 * Where the outbox writes.
 *
 * @example
 * ```ts ignore
 * const target: OutboxTarget = {
 *   kv,
 *   messageKey: (queue, step) => ["celeriac", "q", queue, step, nextSeq(), crypto.randomUUID()],
 *   depthKey: (queue) => ["celeriac", "depth", queue],
 *   repairDepths: (queues) => repairDepths(scope, queues),
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
  /**
   * Reset the malformed depth counters of these queues (a commit summing one
   * fails); resolves with whether one was reset (then the commit is tried once more).
   */
  repairDepths(queues: Iterable<string>): Promise<boolean>;
  /** Called after each successful commit (wakes this process's takers). */
  committed(): void;
}

/**
 * Publishes and acknowledgements grouped into atomic commits, one commit in
 * flight at a time.
 *
 * @example
 * ```ts ignore
 * const outbox = new KvOutbox(target);
 * await outbox.put("celery", encodeMessage(message, "", "celery"));
 * await outbox.delete([["celeriac", "unacked", deliveryTag]]);
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

  /**
   * Delete keys (acknowledged deliveries), {@link ACK_GROUP_KEYS} at most
   * per commit.
   *
   * @param keys the keys; a key that does not exist is ignored
   * @returns resolves once every key is deleted, rejects with the error of
   *   a commit that failed (the keys of other commits may be deleted)
   */
  delete(keys: readonly Deno.KvKey[]): Promise<void> {
    const parts: Promise<void>[] = [];
    for (let i = 0; i < keys.length; i += ACK_GROUP_KEYS) {
      const deletes = keys.slice(i, i + ACK_GROUP_KEYS);
      parts.push(
        new Promise((resolve, reject) => this.#waiting.push({ deletes, resolve, reject })),
      );
    }
    if (parts.length > 0) this.#flushing ??= this.#flush();
    return Promise.all(parts).then(() => {});
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
      const counts = new Map<string, bigint>();
      for (const p of group) {
        if ("queue" in p) counts.set(p.queue, (counts.get(p.queue) ?? 0n) + 1n);
      }
      // the sums first: a sum that fails (a malformed counter) stops the mutations after it
      const op = this.#target.kv.atomic();
      for (const [queue, n] of counts) op.sum(this.#target.depthKey(queue), n);
      for (const p of group) {
        if ("deletes" in p) {
          for (const key of p.deletes) op.delete(key);
          continue;
        }
        op.set(this.#target.messageKey(p.queue, p.stored.step, nextSeq()), p.stored);
      }
      try {
        await this.#commit(op, counts.keys());
      } catch (err) {
        for (const p of group) p.reject(err);
        continue;
      }
      // Only new messages are news to takers: acknowledgements wake nobody.
      if (counts.size > 0) this.#target.committed();
      for (const p of group) p.resolve();
    }
    this.#flushing = null;
  }

  /** Commit; once more after resetting a malformed depth counter that failed it. */
  async #commit(op: Deno.AtomicOperation, queues: Iterable<string>): Promise<void> {
    try {
      await commitAtomic(op);
    } catch (err) {
      if (!await this.#target.repairDepths(queues)) throw err;
      await commitAtomic(op);
    }
  }

  #nextGroup(): Pending[] {
    let bytes = 0;
    let messages = 0;
    let deletes = 0;
    let n = 0;
    for (; n < this.#waiting.length; n++) {
      const p = this.#waiting[n];
      if ("deletes" in p) {
        deletes += p.deletes.length;
        if (n > 0 && deletes > ACK_GROUP_KEYS) break;
        continue;
      }
      messages++;
      bytes += messageBytes(p.stored);
      if (n > 0 && (messages > PUBLISH_GROUP_MESSAGES || bytes > PUBLISH_GROUP_BYTES)) break;
    }
    return this.#waiting.splice(0, n);
  }
}
