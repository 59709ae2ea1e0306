/**
 * The waits for results of the Redis backend: one subscriber connection
 * shared by every waiter of the backend; a waiter subscribes to its task's
 * channel before it reads the key (on a single server a result up to 512
 * KiB in the same write, on the subscriber's connection), so a result
 * stored in between is never missed; after a reconnect every waited-for key
 * is read again; a settled task's channel is left by the next
 * subscription's write or within {@link LEAVE_MS}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { retryWhileDown } from "../broker/outage.ts";
import { decodeResultMeta, READY_STATES, type ResultMeta } from "../protocol/result_meta.ts";
import type { ResultChannels } from "./redis_results.ts";
import { type ResultWaiter, ResultWaiters } from "./result_waiters.ts";

const log = getLogger(["celeriac", "backend", "redis"]);

/**
 * Milliseconds within which the channel of a settled result is left when no
 * other subscription's write carries its `UNSUBSCRIBE` first (its messages
 * meanwhile are ignored: nothing waits for them).
 */
const LEAVE_MS = 100;

/**
 * What the waits use of their backend.
 *
 * @example
 * ```ts ignore
 * const waits = new RedisResultWaits({ key, get, run, channels, outageLimit: 300, closing });
 * ```
 */
export interface ResultWaitsHost {
  /** The key of a task's meta, also the channel its results are published on. */
  key(taskId: string): string;
  /** Read a task's meta; `null` when none is stored. */
  get(taskId: string): Promise<ResultMeta | null>;
  /** Run a command, its connection failure described. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Open the subscriber connection, with what to call on a message and on each (re)connect. */
  channels(on: { message(channel: string, message: string): void; ready(): void }): ResultChannels;
  /** Seconds reads are retried while Redis is unreachable (`outageRetryLimit`). */
  outageLimit: number | undefined;
  /** Aborted when the backend closes: reads waiting for Redis to come back stop. */
  closing: AbortSignal;
}

/**
 * The result waits of one Redis backend.
 *
 * @example
 * ```ts ignore
 * const meta = await waits.waitFor(taskId, AbortSignal.timeout(10_000));
 * await waits.close(); // the waits still pending are rejected
 * ```
 */
export class RedisResultWaits {
  readonly #host: ResultWaitsHost;
  /** Length of a meta key before the task id: a channel's task id follows it. */
  readonly #keyLength: number;
  #subscriber: ResultChannels | null = null;
  readonly #waiters = new ResultWaiters();
  readonly #subscribing = new Map<string, Promise<string | null | undefined>>();
  #closed = false;
  /** Settled tasks whose channels are left by the next subscription's write, or by a timer. */
  readonly #leaving = new Set<string>();
  #leaveTimer: ReturnType<typeof setTimeout> | undefined;

  /** @param host what the waits use of their backend */
  constructor(host: ResultWaitsHost) {
    this.#host = host;
    this.#keyLength = host.key("").length;
  }

  #subscriberConn(): ResultChannels {
    this.#subscriber ??= this.#host.channels({
      message: (channel: string, message: string) => this.#onMessage(channel, message),
      ready: () => this.#recheckAll(),
    });
    return this.#subscriber;
  }

  #onMessage(channel: string, message: string): void {
    const taskId = channel.slice(this.#keyLength);
    if (!this.#waiters.has(taskId)) return;
    let meta: ResultMeta;
    try {
      meta = decodeResultMeta(message, taskId);
    } catch (err) {
      log.warn("Unreadable result for task {taskId}: {error}", {
        taskId,
        error: (err as Error).message,
      });
      // Stored for good: waiting on would only end at the caller's timeout.
      for (const w of this.#takeWaiters(taskId)) w.reject(err);
      return;
    }
    if (READY_STATES.has(meta.status)) this.#settle(taskId, meta);
    else this.#waiters.progress(taskId, meta);
  }

  /**
   * After a reconnect, results published while we were away are read from
   * their keys (again while Redis is unreachable: the reads may go through
   * another connection, still reconnecting, than the subscriber's).
   */
  #recheckAll(): void {
    for (const taskId of this.#waiters.taskIds()) {
      this.#getWhileDown(taskId).then((m) => {
        if (m && READY_STATES.has(m.status)) this.#settle(taskId, m);
      }, () => {});
    }
  }

  /**
   * Read the result of a task waited for, again while Redis is unreachable
   * (until the outage limit or close); null once nothing waits for it.
   */
  #getWhileDown(taskId: string): Promise<ResultMeta | null> {
    return retryWhileDown(
      () => this.#waiters.has(taskId) ? this.#host.get(taskId) : Promise.resolve(null),
      {
        limit: this.#host.outageLimit,
        what: `read the result of ${taskId}`,
        signal: this.#host.closing,
      },
    );
  }

  #settle(taskId: string, meta: ResultMeta): void {
    for (const w of this.#takeWaiters(taskId)) w.resolve(meta);
  }

  /** The waiters of `taskId`, no longer waiting (its channel is left); none when nobody waits. */
  #takeWaiters(taskId: string): Iterable<ResultWaiter> {
    if (!this.#waiters.has(taskId)) return [];
    const taken = this.#waiters.take(taskId);
    this.#unsubscribe(taskId);
    return taken;
  }

  #unsubscribe(taskId: string): void {
    this.#subscribing.delete(taskId);
    if (this.#closed) return;
    // Not at once: the callers the result resolved run first, with no UNSUBSCRIBE written (waking
    // Redis) ahead of them; the next subscription's write carries it, or a timer within LEAVE_MS.
    // Marked now, not once the SUBSCRIBE's reply is handled: a result read together with that
    // reply resolves its callers first, and the next subscription they make must carry it. The
    // UNSUBSCRIBE goes on the SUBSCRIBE's connection, behind it, whenever it is written.
    // The timer is armed only when none is, and left armed when a subscription's write carries
    // the UNSUBSCRIBEs: one timer per LEAVE_MS rather than one created and cleared per result on
    // the way to its caller (a sequential round trip's).
    this.#leaving.add(taskId);
    this.#leaveTimer ??= setTimeout(() => {
      this.#leaveTimer = undefined;
      this.#leave();
    }, LEAVE_MS);
  }

  /** UNSUBSCRIBE from the channels of settled tasks nothing waits for again. */
  #leave(): void {
    for (const taskId of this.#leaving) {
      if (!this.#waiters.has(taskId)) {
        this.#subscriber?.unsubscribe(this.#host.key(taskId)).catch(() => {});
      }
    }
    this.#leaving.clear();
  }

  /**
   * Wait until the task is ready (SUCCESS, FAILURE or REVOKED).
   *
   * @param taskId the task
   * @param signal ends the wait, rejecting with its reason
   * @param onState called with each meta that is not ready yet (STARTED, PROGRESS, ...)
   * @returns the ready meta
   */
  async waitFor(
    taskId: string,
    signal?: AbortSignal,
    onState?: (meta: ResultMeta) => void,
  ): Promise<ResultMeta> {
    signal?.throwIfAborted();
    const { promise, resolve, reject } = Promise.withResolvers<ResultMeta>();
    // An abort while the subscription or the first read is under way rejects
    // `promise` before it is awaited: observed below, not an unhandled rejection.
    promise.catch(() => {});
    const waiter: ResultWaiter = { resolve, reject, onState };
    // Only the wait that subscribes gets the read behind its SUBSCRIBE; one joining later reads
    // afresh: that read may be older than its start (STARTED when PROGRESS is stored by now).
    const subscribes = this.#waiters.add(taskId, waiter);
    if (subscribes) {
      // Framed in this turn, so written together with the SUBSCRIBE.
      if (this.#leaving.size > 0) this.#leave();
      this.#subscribing.set(taskId, this.#subscriberConn().subscribe(this.#host.key(taskId)));
    }
    const drop = () => {
      if (this.#waiters.drop(taskId, waiter)) this.#unsubscribe(taskId);
    };
    const onAbort = () => {
      drop();
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const first = (async () => {
        const read = await this.#host.run(() => this.#subscribed(taskId));
        // Read behind the SUBSCRIBE (RESP3), or else now; through a drop (the subscription is
        // kept and made again), once Redis is back.
        const now = read === undefined || !subscribes
          ? await this.#getWhileDown(taskId)
          : read && decodeResultMeta(read, taskId);
        if (now && READY_STATES.has(now.status)) this.#settle(taskId, now);
        else if (now && !signal?.aborted) onState?.(now);
      })();
      // An abort (which rejects `promise`) ends the wait even while the subscription or the
      // read waits for a reconnect; what they fail with afterwards is of no interest.
      first.catch(() => {});
      await Promise.race([first, promise]);
      return await promise;
    } catch (err) {
      drop();
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * The task's SUBSCRIBE, made again when it failed and the task is still
   * waited for: the retry through a failover (`run`) must send a new one,
   * not await the one that failed (which failed every retry for 15 s while
   * the promoted replica was up after 3, and the `get()` rejected).
   */
  #subscribed(taskId: string): Promise<string | null | undefined> {
    const sent = this.#subscribing.get(taskId);
    if (!sent) return Promise.resolve(undefined);
    return sent.catch((err) => {
      if (this.#subscribing.get(taskId) === sent && this.#waiters.has(taskId) && !this.#closed) {
        const again = this.#subscriberConn().subscribe(this.#host.key(taskId));
        again.catch(() => {}); // awaited by the next retry, or by no one once it gave up
        this.#subscribing.set(taskId, again);
      }
      throw err;
    });
  }

  /** Reject the waits still pending and close the subscriber connection. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#leaveTimer);
    this.#leaving.clear();
    const closed = new DOMException("The result backend was closed while waiting", "AbortError");
    this.#waiters.rejectAll(closed);
    await this.#subscriber?.close();
  }
}
