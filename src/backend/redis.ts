/**
 * The Redis result backend, compatible with Celery's: metas under
 * `celery-task-meta-<id>`, written with SETEX and PUBLISHed on a channel of
 * the same name, never replacing a stored SUCCESS.
 *
 * Waiting is push-based: one subscriber connection per backend, shared by
 * every waiter (redis_waits.ts; redis_results.ts: without ioredis on a
 * single server); a waiter subscribes before it reads the key, so a result
 * stored in between is never missed, and after a reconnect every
 * waited-for key is read again.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { RedisClient } from "../broker/redis_client.ts";
import {
  closeRedis,
  connectRedis,
  openRedisConnection,
  prepareRedis,
} from "../broker/redis_connection.ts";
import { guardRedis } from "../broker/redis_guard.ts";
import { isWrongType } from "../broker/redis_failures.ts";
import { chunked } from "../broker/chunks.ts";
import { isSingleServer, parseRedisUrl } from "../broker/redis_url.ts";
import { retryWhileDown } from "../broker/outage.ts";
import { RespScript, RespScripts, textOrNull } from "../broker/resp_scripts.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { decodeResultMeta, type ResultMeta } from "../protocol/result_meta.ts";
import type { ChordMember } from "../protocol/signature.ts";
import type { ChordFailure, ChordPart, ResultBackend, StoreEntry } from "./port.ts";
import { RedisChords } from "./redis_chord.ts";
import { STORE_META_LUA } from "./redis_store_lua.ts";
import { ioredisResultChannels, respResultChannels } from "./redis_results.ts";
import { RedisResultWaits } from "./redis_waits.ts";
import { storedOnAbort } from "./stored_on_abort.ts";
import { unlessAborted } from "../broker/sleep.ts";
import { checkResultExpires } from "./result_expires.ts";

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
export const STORE_SCRIPT = STORE_META_LUA + String.raw`
local expires = tonumber(ARGV[1]) > 0
for i, key in ipairs(KEYS) do store_meta(key, ARGV[i + 1], ARGV[1], expires) end
return #KEYS
`;

const STORE = new RespScript(STORE_SCRIPT);

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

/**
 * A Celery-compatible Redis result backend.
 *
 * @example
 * ```ts
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
  readonly #client: RedisClient & Scripted;
  readonly #cluster: boolean;
  readonly #prefix: string;
  readonly #ttl: number;
  readonly #outageLimit: number | undefined;
  readonly #chords: RedisChords;
  /** The result stores' own connection, on a single server (not Sentinel or Cluster). */
  readonly #resp: RespScripts | null;
  readonly #waits: RedisResultWaits;
  #closed = false;
  readonly #closing = new AbortController();

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
    }) as RedisClient & Scripted;
    this.#client.defineCommand("celeriacStore", { lua: STORE_SCRIPT });
    this.#resp = isSingleServer(url)
      ? new RespScripts(url, rawUrl, { name: "celeriac-store", role: "result store" })
      : null;
    this.#chords = new RedisChords(this.#client, this.#prefix, this.#ttl, this.#cluster, {
      key: (taskId) => this.key(taskId),
      store: (entries) => this.store(entries),
    });
    const resp = this.#resp;
    this.#waits = new RedisResultWaits({
      key: (taskId) => this.key(taskId),
      get: (taskId) => this.get(taskId),
      run: (fn) => this.#run(fn),
      channels: (on) =>
        resp
          ? respResultChannels(resp, rawUrl, on)
          : ioredisResultChannels(this.#client as unknown as Redis, rawUrl, on),
      outageLimit: this.#outageLimit,
      closing: this.#closing.signal,
    });
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
    return guardRedis(this.#rawUrl, fn, this.#closing.signal);
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
      // Sized once: a spread of a mapped array made two more arrays of every store's metas.
      const keys = new Array<string>(entries.length);
      const args = new Array<string>(entries.length + 1);
      args[0] = ttl;
      for (let i = 0; i < entries.length; i++) {
        keys[i] = this.key(entries[i].taskId);
        args[i + 1] = entries[i].meta;
      }
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
    let raw;
    try {
      raw = this.#resp
        ? await this.#resp.command(["GET", key], textOrNull)
        : await this.#run(() => this.#client.get(key));
    } catch (err) {
      if (!isWrongType(err)) throw err;
      throw new ProtocolError(
        `The result of task ${taskId} cannot be read: Redis key ${key} holds another type, not ` +
          `the string Celery stores (${err.message}). Something other than Celery or Celeriac ` +
          `wrote it; delete the key (forget() the result)`,
        { taskId, cause: err },
      );
    }
    return raw === null ? null : decodeResultMeta(raw, taskId);
  }

  /**
   * Wait until the task is ready (SUCCESS, FAILURE or REVOKED). An abort
   * ends the wait; a ready result stored by then is still read and returned
   * while Redis is connected (while it is not, the abort also ends the wait
   * for it to come back).
   */
  waitFor(
    taskId: string,
    signal?: AbortSignal,
    onState?: (meta: ResultMeta) => void,
  ): Promise<ResultMeta> {
    return storedOnAbort(
      taskId,
      signal,
      (s) => this.#waits.waitFor(taskId, s, onState),
      () => this.#connected() ? this.get(taskId) : Promise.resolve(undefined),
      onState,
    );
  }

  /**
   * A task about to be sent, whose result may be waited for: its channel is
   * subscribed to now, with the send, once a caller has waited (see
   * `RedisResultWaits.expect`).
   */
  expect(taskId: string): void {
    this.#waits.expect(taskId);
  }

  /** Whether a read is sent at once, not after Redis comes back (or the first connect). */
  #connected(): boolean {
    return this.#resp ? this.#resp.ready : (this.#client as unknown as Redis).status === "ready";
  }

  /** Delete a stored result. */
  async forget(taskId: string): Promise<void> {
    await this.#run(() => this.#client.del(this.key(taskId)));
  }

  /** Store a chord's size (`celery-taskset-meta-<gid>.s`, SETEX + PUBLISH), as Celery's producer. */
  setChordSize(groupId: string, size: number): Promise<void> {
    return this.#run(() => this.#chords.setChordSize(groupId, size));
  }

  /**
   * Join a chord header member the way Celery 5.2's Redis backend does (`.j`
   * sorted set); a spoiled chord's failure is stored by the script that claims it.
   */
  chordPartReturn(part: ChordPart, failure?: ChordFailure): Promise<ChordMember[] | null> {
    return this.#run(() => this.#chords.partReturn(part, failure));
  }

  /** Delete a chord's `.j`, `.t`, `.s` keys (and `.c`, the id of a claim that failed it). */
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
    await this.#waits.close();
    await this.#resp?.close();
    await closeRedis(this.#client);
  }
}

/**
 * Open a Redis result backend and check that the server answers.
 *
 * @example
 * ```ts
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
  await prepareRedis(parseRedisUrl(url));
  const backend = new RedisBackend(url, options);
  await unlessAborted(backend.connect(), options.signal, () => backend.close());
  return backend;
}
