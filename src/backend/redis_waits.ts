/**
 * The waits for results of the Redis backend: one subscriber connection
 * shared by every waiter of the backend; a waiter subscribes to its task's
 * channel before it reads the key (on a single server a result up to 512
 * KiB in the same write, on the subscriber's connection), so a result
 * stored in between is never missed; after a reconnect every waited-for key
 * is read again; a settled task's channel is left by the next
 * subscription's write or within {@link LEAVE_MS}. Once a caller has waited,
 * the tasks sent afterwards are subscribed to with their send
 * ({@link RedisResultWaits.expect}, as Celery's `on_task_call`): a `get()`
 * right behind the send finds its subscription made and its key read; one
 * that does not come within {@link EARLY_MS} leaves the channel.
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
 * Milliseconds a channel subscribed to with its task's send
 * ({@link RedisResultWaits.expect}) is kept for a wait to come; one that
 * none joined by then is left, and later sends are not subscribed to until
 * a caller waits again.
 */
const EARLY_MS = 100;

/** A subscription made with a task's send, before anything waits for it. */
interface Early {
  /** When it was made (`performance.now()`). */
  at: number;
  /** The last meta published on the channel since (the read behind the SUBSCRIBE is older). */
  meta?: ResultMeta;
  /** The subscriber reconnected since: results published meanwhile were not heard. */
  stale?: boolean;
}

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
  /** Whether the subscriber has been ready before: its next `ready` is a reconnect. */
  #wasReady = false;
  readonly #waiters = new ResultWaiters();
  readonly #subscribing = new Map<string, Promise<string | null | undefined>>();
  #closed = false;
  /** Settled tasks whose channels are left by the next subscription's write, or by a timer. */
  readonly #leaving = new Set<string>();
  #leaveTimer: ReturnType<typeof setTimeout> | undefined;
  /** Subscriptions made with their sends, nothing waiting for them yet, oldest first. */
  readonly #early = new Map<string, Early>();
  #earlyTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether sends are subscribed to: a caller waited, and no such subscription went unused since. */
  #expecting = false;

  /** @param host what the waits use of their backend */
  constructor(host: ResultWaitsHost) {
    this.#host = host;
    this.#keyLength = host.key("").length;
  }

  #subscriberConn(): ResultChannels {
    this.#subscriber ??= this.#host.channels({
      message: (channel: string, message: string) => this.#onMessage(channel, message),
      ready: () => {
        // The first connect: every subscription under way reads its key behind its SUBSCRIBE
        // (or its caller does, once subscribed), so a read of each here would be a second one.
        if (this.#wasReady) this.#recheckAll();
        this.#wasReady = true;
      },
    });
    return this.#subscriber;
  }

  #onMessage(channel: string, message: string): void {
    const taskId = channel.slice(this.#keyLength);
    if (!this.#waiters.has(taskId)) {
      // Kept for the wait that may come; an unreadable one is left for that wait's own read.
      const early = this.#early.get(taskId);
      if (early) {
        try {
          early.meta = decodeResultMeta(message, taskId);
        } catch {
          early.stale = true;
        }
      }
      return;
    }
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
    for (const early of this.#early.values()) early.stale = true;
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
      if (!this.#waiters.has(taskId) && !this.#early.has(taskId)) {
        this.#subscriber?.unsubscribe(this.#host.key(taskId)).catch(() => {});
      }
    }
    this.#leaving.clear();
  }

  /**
   * A task about to be sent whose result a caller may wait for: once a
   * caller has waited (and no such subscription went unused since), its
   * channel is subscribed to now, its key read behind the SUBSCRIBE as a
   * wait's is, so that a {@link RedisResultWaits.waitFor} right behind the
   * send finds both done (written with the send, not after its reply). What
   * is published on the channel meanwhile is kept for that wait. Left
   * within {@link EARLY_MS} to {@link EARLY_MS} × 2 when no wait came, and
   * sends are not subscribed to again until one does: a sender that never
   * waits holds no subscription.
   *
   * @param taskId the task
   */
  expect(taskId: string): void {
    if (!this.#expecting || this.#closed) return;
    if (this.#waiters.has(taskId) || this.#early.has(taskId)) return;
    this.#early.set(taskId, { at: performance.now() });
    if (this.#leaving.size > 0) this.#leave();
    const subscribing = this.#subscriberConn().subscribe(this.#host.key(taskId));
    subscribing.catch(() => {}); // awaited by the wait that comes, or by no one
    this.#subscribing.set(taskId, subscribing);
    this.#earlyTimer ??= setTimeout(() => this.#expire(), EARLY_MS);
  }

  /** Leave the channels subscribed to with their sends that no wait joined within EARLY_MS. */
  #expire(): void {
    this.#earlyTimer = undefined;
    const before = performance.now() - EARLY_MS;
    for (const [taskId, early] of this.#early) {
      if (early.at > before) break; // the rest are younger
      this.#early.delete(taskId);
      this.#expecting = false;
      this.#unsubscribe(taskId);
    }
    if (this.#early.size > 0) this.#earlyTimer = setTimeout(() => this.#expire(), EARLY_MS);
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
    // A state published once the wait joined is as new as its first read, or newer (the
    // read behind the SUBSCRIBE comes after what was published before it): the read is then
    // not told again, so that each stored state is told once.
    let toldOne = false;
    const follow = onState && ((meta: ResultMeta) => {
      toldOne = true;
      onState(meta);
    });
    const waiter: ResultWaiter = { resolve, reject, onState: follow };
    // Only the wait that subscribes gets the read behind its SUBSCRIBE; one joining later reads
    // afresh: that read may be older than its start (STARTED when PROGRESS is stored by now).
    const subscribes = this.#waiters.add(taskId, waiter);
    // Subscribed to with its send: that SUBSCRIBE's read, and what was published since, serve.
    const early = subscribes ? this.#early.get(taskId) : undefined;
    if (subscribes) {
      this.#expecting = true;
      if (early) this.#early.delete(taskId);
      else {
        // Framed in this turn, so written together with the SUBSCRIBE.
        if (this.#leaving.size > 0) this.#leave();
        this.#subscribing.set(taskId, this.#subscriberConn().subscribe(this.#host.key(taskId)));
      }
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
        // kept and made again), once Redis is back. A subscription made with the send: the last
        // state published since its read, unless the read is a ready one.
        const heard = early?.meta;
        const now = heard && READY_STATES.has(heard.status)
          ? heard
          : read === undefined || !subscribes || early?.stale
          ? await this.#getWhileDown(taskId)
          : newest(read === null ? null : decodeResultMeta(read, taskId), heard);
        if (now && READY_STATES.has(now.status)) this.#settle(taskId, now);
        else if (now && !signal?.aborted && !toldOne) onState?.(now);
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
    clearTimeout(this.#earlyTimer);
    this.#leaving.clear();
    this.#early.clear();
    const closed = new DOMException("The result backend was closed while waiting", "AbortError");
    this.#waiters.rejectAll(closed);
    await this.#subscriber?.close();
  }
}

/** A ready read, else the state published after it, else the read. */
function newest(read: ResultMeta | null, heard: ResultMeta | undefined): ResultMeta | null {
  return read && READY_STATES.has(read.status) ? read : heard ?? read;
}
