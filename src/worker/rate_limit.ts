/**
 * Task rate limits: token buckets (Celery's: one token per run, capacity
 * 1, so no bursts) and the {@link RateLimiter} that holds rate-limited
 * tasks until their token is due, without blocking other tasks.
 *
 * Where the buckets live is the caller's choice: in the broker
 * (`Broker.acquireTokens`, Redis: global across workers) or in this
 * process ({@link LocalTokenBuckets}: per worker).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { MAX_TIMER_MS } from "../broker/long_timeout.ts";
import type { TokenGrant, TokenRequest } from "../broker/port.ts";

const log = getLogger(["celeriac", "worker"]);

/** How long to wait before asking again when taking tokens failed. */
const ERROR_RETRY_MS = 1000;

/**
 * A token bucket: tokens left and when they were counted.
 *
 * @example
 * ```ts
 * import type { BucketState } from "@celeriac/celeriac/worker";
 * const full: BucketState = { tokens: 1, at: Date.now() };
 * ```
 */
export interface BucketState {
  /** Tokens left (fractional while refilling). */
  tokens: number;
  /** When `tokens` was counted, in milliseconds since the epoch. */
  at: number;
}

/**
 * Take tokens from a bucket: refill it for the time elapsed, grant whole
 * tokens up to the count asked for, and say when the next one is due. The
 * same arithmetic as the Redis script behind `RedisBroker.acquireTokens`.
 *
 * @example Ten per second: one now, the next in 100 ms
 * ```ts
 * import { takeTokens } from "@celeriac/celeriac/worker";
 * const req = { key: "tasks.scrape", rate: 10, capacity: 1, count: 3 };
 * const first = takeTokens(undefined, 0, req);
 * first.grant; // { granted: 1, retryAfterMs: 100 }
 * takeTokens(first.state, 100, req).grant; // { granted: 1, retryAfterMs: 100 }
 * ```
 *
 * @param state the bucket, or undefined for a new (full) one
 * @param now the current time in milliseconds
 * @param request rate, capacity and count
 * @returns the new state and the grant
 */
export function takeTokens(
  state: BucketState | undefined,
  now: number,
  request: TokenRequest,
): { state: BucketState; grant: TokenGrant } {
  const { rate, capacity, count } = request;
  const tokens = state
    ? Math.min(capacity, state.tokens + Math.max(0, now - state.at) / 1000 * rate)
    : capacity;
  const granted = Math.min(count, Math.floor(tokens + 1e-9));
  const left = tokens - granted;
  const retryAfterMs = granted < count ? Math.max(1, Math.ceil((1 - left) / rate * 1000)) : 0;
  return { state: { tokens: left, at: now }, grant: { granted, retryAfterMs } };
}

/**
 * Token buckets in this process's memory: rate limits per worker, for
 * brokers without `acquireTokens` (KV, AMQP).
 *
 * @example
 * ```ts
 * import { LocalTokenBuckets } from "@celeriac/celeriac/worker";
 * const buckets = new LocalTokenBuckets();
 * const [grant] = buckets.acquire([{ key: "tasks.scrape", rate: 10, capacity: 1, count: 5 }]);
 * grant.granted; // 1: a new bucket holds one token
 * ```
 */
export class LocalTokenBuckets {
  readonly #buckets = new Map<string, BucketState>();
  readonly #now: () => number;

  /**
   * Create empty buckets.
   *
   * @param now clock in milliseconds; default `Date.now`
   */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Take tokens, as `Broker.acquireTokens` does.
   *
   * @param requests one per bucket
   * @returns one grant per request
   */
  acquire(requests: readonly TokenRequest[]): TokenGrant[] {
    const now = this.#now();
    return requests.map((r) => {
      const { state, grant } = takeTokens(this.#buckets.get(r.key), now, r);
      this.#buckets.set(r.key, state);
      return grant;
    });
  }
}

/**
 * Options of {@link RateLimiter}.
 *
 * @example
 * ```ts
 * import { LocalTokenBuckets, type RateLimiterOptions } from "@celeriac/celeriac/worker";
 * const buckets = new LocalTokenBuckets();
 * const options: RateLimiterOptions<string> = {
 *   acquire: (requests) => Promise.resolve(buckets.acquire(requests)),
 *   onReady: (ids) => console.log("run now:", ids),
 * };
 * ```
 */
export interface RateLimiterOptions<T> {
  /** Takes tokens: the broker's `acquireTokens`, or {@link LocalTokenBuckets}. */
  acquire(requests: readonly TokenRequest[]): Promise<TokenGrant[]>;
  /** Receives held items whose token was granted, in the order they were submitted. */
  onReady(items: T[]): void;
  /** Bucket capacity (largest burst); default 1, as Celery. */
  capacity?: number;
}

interface Line<T> {
  items: T[];
  timer: ReturnType<typeof setTimeout> | undefined;
  asking: boolean;
}

/**
 * Holds rate-limited items (the worker's unacknowledged deliveries) until
 * their task's token is granted. Items submitted in one turn cost one
 * `acquire` call for all task names together; items not granted wait on
 * one timer per task name, set for when the next token is due, and are
 * then asked for again. Nothing here blocks other tasks.
 *
 * The worker renews the leases of {@link RateLimiter.held} items like
 * those of held ETA tasks, and requeues {@link RateLimiter.drain}ed ones
 * at shutdown.
 *
 * @example
 * ```ts
 * import { LocalTokenBuckets, RateLimiter } from "@celeriac/celeriac/worker";
 * const buckets = new LocalTokenBuckets();
 * const started: string[] = [];
 * const limiter = new RateLimiter<string>({
 *   acquire: (requests) => Promise.resolve(buckets.acquire(requests)),
 *   onReady: (ids) => started.push(...ids),
 * });
 * limiter.setRate("tasks.scrape", 10);
 * for (const id of ["a", "b", "c"]) limiter.submit("tasks.scrape", id);
 * await new Promise((r) => setTimeout(r, 250));
 * // started: ["a", "b", "c"], about 100 ms apart
 * limiter.drain();
 * ```
 */
export class RateLimiter<T> {
  readonly #acquire: RateLimiterOptions<T>["acquire"];
  readonly #onReady: (items: T[]) => void;
  readonly #capacity: number;
  readonly #rates = new Map<string, number>();
  readonly #lines = new Map<string, Line<T>>();
  #size = 0;
  #scheduled = false;
  #closed = false;

  /**
   * Create a limiter; no task is limited until {@link RateLimiter.setRate}.
   *
   * @param options how to take tokens and where ready items go
   */
  constructor(options: RateLimiterOptions<T>) {
    this.#acquire = options.acquire;
    this.#onReady = options.onReady;
    this.#capacity = options.capacity ?? 1;
  }

  /**
   * Set or remove a task's limit. Removing it releases its held items at
   * once; a new rate applies to them at once (they do not wait out a token
   * due at the old one).
   *
   * @param name task name
   * @param perSecond runs per second; `null` or 0 for no limit
   */
  setRate(name: string, perSecond: number | null): void {
    if (perSecond === null || perSecond === 0) {
      this.#rates.delete(name);
      const line = this.#lines.get(name);
      if (!line) return;
      clearTimeout(line.timer);
      this.#lines.delete(name);
      this.#size -= line.items.length;
      if (line.items.length && !this.#closed) this.#onReady(line.items);
      return;
    }
    if (!(perSecond > 0 && Number.isFinite(perSecond))) {
      throw new RangeError(`A rate limit must be a positive number per second, got ${perSecond}`);
    }
    const before = this.#rates.get(name);
    this.#rates.set(name, perSecond);
    const line = this.#lines.get(name);
    if (before === perSecond || !line || line.timer === undefined) return;
    // The held items wait for a token due at the old rate: ask again at the new one.
    clearTimeout(line.timer);
    line.timer = undefined;
    this.#schedule();
  }

  /**
   * A task's limit in runs per second, or `null` without one.
   *
   * @param name task name
   * @returns the rate
   */
  rate(name: string): number | null {
    return this.#rates.get(name) ?? null;
  }

  /**
   * Hold an item of a rate-limited task until its token is granted.
   *
   * @param name task name; without a rate the item is ready at once
   * @param item what to hand to `onReady`
   */
  submit(name: string, item: T): void {
    if (!this.#rates.has(name)) return this.#onReady([item]);
    let line = this.#lines.get(name);
    if (!line) this.#lines.set(name, line = { items: [], timer: undefined, asking: false });
    line.items.push(item);
    this.#size++;
    this.#schedule();
  }

  /**
   * Take held items out (revoked tasks): they will not be handed to `onReady`.
   *
   * @param matches selects the items to remove
   * @returns the removed items
   */
  remove(matches: (item: T) => boolean): T[] {
    const out: T[] = [];
    for (const line of this.#lines.values()) {
      const keep: T[] = [];
      for (const item of line.items) (matches(item) ? out : keep).push(item);
      line.items = keep;
    }
    this.#size -= out.length;
    return out;
  }

  /** How many items are held. */
  get size(): number {
    return this.#size;
  }

  /**
   * The items held now, for lease renewal.
   *
   * @returns the items
   */
  held(): T[] {
    return [...this.#lines.values()].flatMap((l) => l.items);
  }

  /**
   * Stop: cancel the timers and hand back every held item (the worker
   * requeues them). Nothing is released afterwards.
   *
   * @returns the items that were held
   */
  drain(): T[] {
    this.#closed = true;
    const items = this.held();
    for (const line of this.#lines.values()) clearTimeout(line.timer);
    this.#lines.clear();
    this.#size = 0;
    return items;
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#ask().catch((err) =>
        log.error("Rate limiter failed: {error}", { error: (err as Error).message })
      );
    });
  }

  async #ask(): Promise<void> {
    const due: [string, Line<T>][] = [];
    for (const [name, line] of this.#lines) {
      if (line.items.length && !line.asking && line.timer === undefined) due.push([name, line]);
    }
    if (due.length === 0) return;
    const requests = due.map(([name, line]) => {
      line.asking = true;
      const rate = this.#rates.get(name)!;
      return { key: name, rate, capacity: this.#capacity, count: line.items.length };
    });
    let grants: TokenGrant[];
    try {
      grants = await this.#acquire(requests);
    } catch (err) {
      log.warn("Cannot take rate-limit tokens: {error}; asking again in {ms} ms", {
        error: (err as Error).message,
        ms: ERROR_RETRY_MS,
      });
      grants = requests.map(() => ({ granted: 0, retryAfterMs: ERROR_RETRY_MS }));
    }
    const ready: T[] = [];
    due.forEach(([name, line], i) => {
      line.asking = false;
      if (this.#closed || this.#lines.get(name) !== line) return;
      const granted = line.items.splice(0, grants[i].granted);
      this.#size -= granted.length;
      ready.push(...granted);
      if (line.items.length === 0) {
        this.#lines.delete(name);
        return;
      }
      // A token due later than a timer holds (a rate slower than one per
      // 24.8 days) is asked for again after the longest wait a timer holds:
      // a longer delay would fire after 1 ms, and ask again and again.
      line.timer = setTimeout(() => {
        line.timer = undefined;
        this.#schedule();
      }, Math.min(Math.max(1, grants[i].retryAfterMs), MAX_TIMER_MS));
    });
    if (ready.length) this.#onReady(ready);
  }
}
