/**
 * The Redis result backend, compatible with Celery's: metas under
 * `celery-task-meta-<id>`, written with SETEX and PUBLISHed on a channel of
 * the same name, never replacing a stored SUCCESS.
 *
 * Waiting is push-based: one subscriber connection per backend, shared by
 * every waiter (redis_results.ts: without ioredis on a single server); a
 * waiter subscribes before it reads the key, so a result stored in between
 * is never missed, and after a reconnect every waited-for key is read again.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Redis } from "ioredis";
import {
  closeRedis,
  connectRedis,
  guardRedis,
  openRedisConnection,
} from "../broker/redis_connection.ts";
import { chunked } from "../broker/chunks.ts";
import { isSingleServer, parseRedisUrl } from "../broker/redis_url.ts";
import { retryWhileDown } from "../broker/outage.ts";
import { RespScript, RespScripts, textOrNull } from "../broker/resp_scripts.ts";
import { decodeResultMeta, READY_STATES, type ResultMeta } from "../protocol/result_meta.ts";
import type { ChordMember } from "../protocol/signature.ts";
import type { ChordPart, ResultBackend, StoreEntry } from "./port.ts";
import { RedisChords } from "./redis_chord.ts";
import { ioredisResultChannels, respResultChannels, type ResultChannels } from "./redis_results.ts";
import { unlessAborted } from "../broker/sleep.ts";
import { checkResultExpires } from "./result_expires.ts";

const log = getLogger(["celeriac", "backend", "redis"]);

/**
 * Key prefix of task metas, as in Celery.
 *
 * @example The Redis key of a result
 * ```ts
 * import { TASK_META_PREFIX } from "@celeriac/celeriac/transports";
 * const taskId = crypto.randomUUID();
 * const key = TASK_META_PREFIX + taskId; // "celery-task-meta-<id>", where Python Celery looks too
 * // redis-cli GET celery-task-meta-<id>
 * ```
 */
export const TASK_META_PREFIX = "celery-task-meta-";

/**
 * Store metas unless a SUCCESS is already stored, each published on the
 * channel named like its key. KEYS = meta keys; ARGV[1] = TTL seconds
 * (0 = keep forever), ARGV[2..] = meta JSON, one per key.
 */
const STORE_SCRIPT = String.raw`
-- The TTL goes to SET and SETEX as the text it came as: a number argument would be formatted
-- by every call.
local ttl = ARGV[1]
local expires = tonumber(ttl) > 0
for i, key in ipairs(KEYS) do
  local meta = ARGV[i + 1]
  -- A task's first meta (the usual case) is stored by SET NX alone; an existing one is read.
  local stored
  if expires then
    stored = redis.call('SET', key, meta, 'NX', 'EX', ttl)
  else
    stored = redis.call('SET', key, meta, 'NX')
  end
  if not stored then
    local cur = redis.call('GET', key)
    local status
    if cur then
      status = string.match(cur, '^{"status": "(%u+)"')
      if status == nil then
        local ok, m = pcall(cjson.decode, cur)
        if ok and type(m) == 'table' then status = m.status end
      end
    end
    if status ~= 'SUCCESS' then
      if expires then
        redis.call('SETEX', key, ttl, meta)
      else
        redis.call('SET', key, meta)
      end
      stored = true
    end
  end
  if stored then redis.call('PUBLISH', key, meta) end
end
return #KEYS
`;

const STORE = new RespScript(STORE_SCRIPT);

/**
 * Milliseconds within which the channel of a settled result is left when no
 * other subscription's write carries its `UNSUBSCRIBE` first (its messages
 * meanwhile are ignored: nothing waits for them).
 */
const LEAVE_MS = 100;

/**
 * Options of {@link openRedisBackend}.
 *
 * @example Results kept for an hour
 * ```ts
 * import { openRedisBackend, type RedisBackendOptions } from "@celeriac/celeriac/transports";
 * const options: RedisBackendOptions = { resultExpires: 3600 }; // 0 would keep them forever
 * const connect = (url: string) => openRedisBackend(url, options);
 * ```
 */
export interface RedisBackendOptions {
  /**
   * Seconds a result is kept (Celery `result_expires`), truncated to whole
   * seconds as Celery does (so under 1 s keeps it); 0 keeps it forever.
   * The URL's `result_expires` overrides it. Default 86400.
   */
  resultExpires?: number;
  /**
   * Seconds a result store is retried, with backoff, while Redis is
   * unreachable. Default 300 (`DEFAULT_OUTAGE_LIMIT`).
   */
  outageRetryLimit?: number;
  /**
   * Aborts opening: what was opened is closed and the open rejects with
   * the signal's reason (at once, opening nothing, when it already
   * aborted). Default: none.
   */
  signal?: AbortSignal;
}

interface Scripted {
  celeriacStore(numKeys: number, ...args: string[]): Promise<number>;
}

interface Waiter {
  resolve(meta: ResultMeta): void;
  reject(reason: unknown): void;
  onState?(meta: ResultMeta): void;
}

/**
 * A Celery-compatible Redis result backend.
 *
 * @example
 * ```ts ignore
 * import { openRedisBackend } from "@celeriac/celeriac/transports";
 * const backend = await openRedisBackend("redis://127.0.0.1:6379/0");
 * const meta = await backend.waitFor("some-task-id", AbortSignal.timeout(10_000));
 * await backend.close();
 * ```
 */
export class RedisBackend implements ResultBackend {
  /** Always `redis`. */
  readonly transport = "redis";
  readonly #rawUrl: string;
  readonly #client: Redis & Scripted;
  readonly #cluster: boolean;
  readonly #prefix: string;
  readonly #ttl: number;
  readonly #outageLimit: number | undefined;
  readonly #chords: RedisChords;
  /** The result stores' own connection, on a single server (not Sentinel or Cluster). */
  readonly #resp: RespScripts | null;
  #subscriber: ResultChannels | null = null;
  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #subscribing = new Map<string, Promise<unknown>>();
  #closed = false;
  readonly #closing = new AbortController();
  /** Settled tasks whose channels are left by the next subscription's write, or by a timer. */
  readonly #leaving = new Set<string>();
  #leaveTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Use {@link openRedisBackend}.
   *
   * @param rawUrl `redis://...`; query `global_keyprefix` prefixes keys as Celery ≥ 5.3 does
   * @param options expiry
   */
  constructor(rawUrl: string, options: RedisBackendOptions = {}) {
    this.#rawUrl = rawUrl;
    const url = parseRedisUrl(rawUrl);
    this.#cluster = url.cluster !== undefined;
    const p = url.query.global_keyprefix ?? "";
    this.#prefix = p === "" || /[:_.-]$/.test(p) ? p : p + "_";
    // Whole seconds, truncated, as Celery's int(result_expires): under 1 s keeps results.
    this.#ttl = Math.trunc(
      url.query.result_expires === undefined
        ? checkResultExpires(options.resultExpires ?? 86400)
        : checkResultExpires(Number(url.query.result_expires), "result_expires"),
    );
    this.#outageLimit = options.outageRetryLimit;
    this.#client = openRedisConnection(url, rawUrl, {
      autoPipelining: true,
      name: "celeriac-backend",
    }) as Redis & Scripted;
    this.#client.defineCommand("celeriacStore", { lua: STORE_SCRIPT });
    this.#resp = isSingleServer(url)
      ? new RespScripts(url, rawUrl, { name: "celeriac-store", role: "result store" })
      : null;
    this.#chords = new RedisChords(this.#client, this.#prefix, this.#ttl, this.#cluster);
  }

  /**
   * Connect now (otherwise the first command connects), the result store's
   * own connection too, so that a refused password or a missing database
   * fails here instead of being retried as an outage by the first store.
   */
  async connect(): Promise<void> {
    await connectRedis(this.#client, this.#rawUrl);
    await this.#resp?.connect();
  }

  /** The key of a task's meta. */
  key(taskId: string): string {
    return this.#prefix + TASK_META_PREFIX + taskId;
  }

  #run<T>(fn: () => Promise<T>): Promise<T> {
    return guardRedis(this.#rawUrl, fn);
  }

  /**
   * Store (SET NX EX, or SETEX over an existing meta) and PUBLISH each
   * meta in one script call, skipping tasks that already have a SUCCESS
   * stored. On a single server the call goes through
   * a connection of its own without ioredis (`celeriac-store`, see
   * resp_scripts.ts); through Sentinel, in calls of up to 1,000 results
   * (chunks.ts). On Redis Cluster result keys spread over slots, so
   * each is stored by a call of its own. While Redis is
   * unreachable the store is retried with backoff for `outageRetryLimit`
   * seconds (it is idempotent), or until {@link RedisBackend.close}: a store
   * still waiting then fails.
   */
  async store(entries: readonly StoreEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const ttl = String(this.#ttl);
    if (this.#cluster) {
      await this.#storeRetrying(entries.length, () =>
        Promise.all(
          entries.map((e) => this.#client.celeriacStore(1, this.key(e.taskId), ttl, e.meta)),
        ));
      return;
    }
    const resp = this.#resp;
    if (resp) {
      const keys = entries.map((e) => this.key(e.taskId));
      const args = [ttl, ...entries.map((e) => e.meta)];
      await retryWhileDown(() => resp.evalScript(STORE, keys, args, Number), {
        limit: this.#outageLimit,
        what: `store ${entries.length} result(s)`,
        signal: this.#closing.signal,
      });
      return;
    }
    await this.#storeRetrying(entries.length, () =>
      Promise.all(
        chunked(entries).map((some) =>
          this.#client.celeriacStore(
            some.length,
            ...some.map((e) => this.key(e.taskId)),
            ttl,
            ...some.map((e) => e.meta),
          )
        ),
      ));
  }

  #storeRetrying(n: number, fn: () => Promise<unknown>): Promise<unknown> {
    return retryWhileDown(() => this.#run(fn), {
      limit: this.#outageLimit,
      what: `store ${n} result(s)`,
      signal: this.#closing.signal,
    });
  }

  /**
   * Read a meta; `null` when nothing is stored (PENDING). On a single
   * server through the result stores' connection (no ioredis).
   */
  async get(taskId: string): Promise<ResultMeta | null> {
    const key = this.key(taskId);
    const raw = this.#resp
      ? await this.#resp.command(["GET", key], textOrNull)
      : await this.#run(() => this.#client.get(key));
    return raw === null ? null : decodeResultMeta(raw, taskId);
  }

  #subscriberConn(): ResultChannels {
    if (this.#subscriber) return this.#subscriber;
    const on = {
      message: (channel: string, message: string) => this.#onMessage(channel, message),
      ready: () => this.#recheckAll(),
    };
    this.#subscriber = this.#resp
      ? respResultChannels(this.#resp, this.#rawUrl, on)
      : ioredisResultChannels(this.#client, this.#rawUrl, on);
    return this.#subscriber;
  }

  #onMessage(channel: string, message: string): void {
    const taskId = channel.slice(this.#prefix.length + TASK_META_PREFIX.length);
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
    else for (const w of this.#waiters.get(taskId) ?? []) w.onState?.(meta);
  }

  /**
   * After a reconnect, results published while we were away are read from
   * their keys (again while Redis is unreachable: the reads may go through
   * another connection, still reconnecting, than the subscriber's).
   */
  #recheckAll(): void {
    for (const taskId of this.#waiters.keys()) {
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
      () => this.#waiters.has(taskId) ? this.get(taskId) : Promise.resolve(null),
      {
        limit: this.#outageLimit,
        what: `read the result of ${taskId}`,
        signal: this.#closing.signal,
      },
    );
  }

  #settle(taskId: string, meta: ResultMeta): void {
    for (const w of this.#takeWaiters(taskId)) w.resolve(meta);
  }

  /** The waiters of `taskId`, no longer waiting (its channel is left); none when nobody waits. */
  #takeWaiters(taskId: string): Iterable<Waiter> {
    const set = this.#waiters.get(taskId);
    if (!set) return [];
    this.#waiters.delete(taskId);
    this.#unsubscribe(taskId);
    return set;
  }

  #unsubscribe(taskId: string): void {
    this.#subscribing.delete(taskId);
    if (this.#closed) return;
    // Not at once: the callers the result resolved run first, with no UNSUBSCRIBE written (waking
    // Redis) ahead of them; the next subscription's write carries it, or a timer within LEAVE_MS.
    // Marked now, not once the SUBSCRIBE's reply is handled: a result read together with that
    // reply resolves its callers first, and the next subscription they make must carry it. The
    // UNSUBSCRIBE goes on the SUBSCRIBE's connection, behind it, whenever it is written.
    this.#leaving.add(taskId);
    this.#leaveTimer ??= setTimeout(() => this.#leave(), LEAVE_MS);
  }

  /** UNSUBSCRIBE from the channels of settled tasks nothing waits for again. */
  #leave(): void {
    clearTimeout(this.#leaveTimer);
    this.#leaveTimer = undefined;
    for (const taskId of this.#leaving) {
      if (!this.#waiters.has(taskId)) {
        this.#subscriber?.unsubscribe(this.key(taskId)).catch(() => {});
      }
    }
    this.#leaving.clear();
  }

  /** Wait until the task is ready (SUCCESS, FAILURE or REVOKED). */
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
    const waiter: Waiter = { resolve, reject, onState };
    let set = this.#waiters.get(taskId);
    if (!set) {
      set = new Set();
      this.#waiters.set(taskId, set);
      // Framed in this turn, so written together with the SUBSCRIBE.
      if (this.#leaving.size > 0) this.#leave();
      this.#subscribing.set(taskId, this.#subscriberConn().subscribe(this.key(taskId)));
    }
    set.add(waiter);
    const drop = () => {
      const s = this.#waiters.get(taskId);
      if (s?.delete(waiter) && s.size === 0) {
        this.#waiters.delete(taskId);
        this.#unsubscribe(taskId);
      }
    };
    const onAbort = () => {
      drop();
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const first = (async () => {
        await this.#run(() => this.#subscribing.get(taskId) ?? Promise.resolve());
        // Through a drop (the subscription is kept and made again): read once Redis is back.
        const now = await this.#getWhileDown(taskId);
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

  /** Delete a stored result. */
  async forget(taskId: string): Promise<void> {
    await this.#run(() => this.#client.del(this.key(taskId)));
  }

  /** Store a chord's size (`celery-taskset-meta-<gid>.s`, SETEX + PUBLISH), as Celery's producer. */
  setChordSize(groupId: string, size: number): Promise<void> {
    return this.#run(() => this.#chords.setChordSize(groupId, size));
  }

  /** Join a chord header member the way Celery 5.2's Redis backend does (`.j` sorted set). */
  chordPartReturn(part: ChordPart): Promise<ChordMember[] | null> {
    return this.#run(() => this.#chords.partReturn(part));
  }

  /** Delete a chord's `.j`, `.t`, `.s` keys. */
  chordCleanup(groupId: string): Promise<void> {
    return this.#run(() => this.#chords.cleanup(groupId));
  }

  /** Store a group meta under `celery-taskset-meta-<gid>` (Python's `GroupResult.restore` reads it). */
  saveGroup(groupId: string, meta: string): Promise<void> {
    return this.#run(() => this.#chords.saveGroup(groupId, meta));
  }

  /** Read a saved group meta. */
  restoreGroup(groupId: string): Promise<string | null> {
    return this.#run(() => this.#chords.restoreGroup(groupId));
  }

  /** Delete a saved group meta. */
  forgetGroup(groupId: string): Promise<void> {
    return this.#run(() => this.#chords.forgetGroup(groupId));
  }

  /**
   * Close its connections; pending waiters are rejected. The replies still
   * due (`QUIT`, stores under way) are waited for 2 s at most, then the
   * connections are dropped: a server that stopped answering does not hold
   * the close, and a store still waiting or retrying then fails.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    clearTimeout(this.#leaveTimer);
    this.#leaving.clear();
    const closed = new DOMException("The result backend was closed while waiting", "AbortError");
    for (const set of this.#waiters.values()) for (const w of set) w.reject(closed);
    this.#waiters.clear();
    await this.#subscriber?.close();
    await this.#resp?.close();
    await closeRedis(this.#client);
  }
}

/**
 * Open a Redis result backend and check that the server answers.
 *
 * @example
 * ```ts ignore
 * import { openRedisBackend } from "@celeriac/celeriac/transports";
 * const backend = await openRedisBackend("redis://127.0.0.1:6379/1", { resultExpires: 3600 });
 * await backend.close();
 * ```
 *
 * @param url `redis://[:password@]host:port/db`
 * @param options result expiry
 * @returns the connected backend
 * @throws {BrokerConnectionError} when the server cannot be reached
 * @throws {RangeError} when `resultExpires` (or the URL's `result_expires`) is negative, NaN or infinite
 */
export async function openRedisBackend(
  url: string,
  options: RedisBackendOptions = {},
): Promise<RedisBackend> {
  options.signal?.throwIfAborted();
  const backend = new RedisBackend(url, options);
  await unlessAborted(backend.connect(), options.signal, () => backend.close());
  return backend;
}
