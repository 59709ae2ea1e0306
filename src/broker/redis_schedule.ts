/**
 * The schedule store on Redis (single server, Sentinel or Cluster): the lease is a key holding
 * `holder\ntoken` with a millisecond expiry, the fencing token an INCR
 * counter, run states and run-time entries two hashes. Every change that
 * must hold under the lease is one Lua script, so it is atomic.
 *
 * @module
 */

import type { RedisClient } from "./redis_client.ts";
import { closeRedis, connectRedis, openRedisConnection, prepareRedis } from "./redis_connection.ts";
import { guardRedis } from "./redis_guard.ts";
import { isClusterUrl, parseRedisUrl } from "./redis_url.ts";
import { unlessAborted } from "./sleep.ts";
import {
  type BrokenLease,
  type CommitOutcome,
  DEFAULT_BEAT_NAMESPACE,
  type LeaseInfo,
  type ScheduleKeyRole,
  type ScheduleStore,
  ScheduleStoreKeyError,
  type ScheduleStoreOptions,
} from "./schedule_store.ts";

// A lease that does not read as `holder\ntoken`, or one without an expiry (PERSIST, a restore
// without TTLs), would keep every beat out for ever: it counts as free, and the reply names it.
const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
local broken = false
if cur then
  local h, t = string.match(cur, '^(.*)\\n(%d+)$')
  local ttl = redis.call('PTTL', KEYS[1])
  if h == ARGV[1] and ttl >= 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {tonumber(t)}
  end
  if h and ttl >= 0 then return {-1} end
  if h then broken = 'no expiry' else broken = 'unreadable' end
end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '\\n' .. t, 'PX', ARGV[2])
return {t, broken, cur}`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const COMMIT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if (cur or '') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
return 1`;

// Each key's type, to name the one a WRONGTYPE reply came from (and the fence's value: INCR
// refuses a string that is not an integer).
const TYPES = `
local t = {}
for i, k in ipairs(KEYS) do t[i] = redis.call('TYPE', k).ok end
t[#KEYS + 1] = redis.call('TYPE', KEYS[2]).ok == 'string' and redis.call('GET', KEYS[2]) or ''
return t`;

/** The type each of beat's keys must have (or be absent), in the order {@link TYPES} takes them. */
const EXPECTED: [ScheduleKeyRole, string][] = [
  ["lease", "string"],
  ["fence", "string"],
  ["runs", "hash"],
  ["entries", "hash"],
];

interface Scripted {
  beatTypes(lease: string, fence: string, runs: string, entries: string): Promise<string[]>;
  beatAcquire(
    lease: string,
    fence: string,
    holder: string,
    ttl: string,
  ): Promise<[number, string?, string?]>;
  beatRelease(lease: string, value: string): Promise<number>;
  beatCommit(
    lease: string,
    runs: string,
    value: string,
    entry: string,
    expected: string,
    next: string,
  ): Promise<number>;
}

/**
 * A {@link ScheduleStore} on Redis (honours the URL's `global_keyprefix`).
 *
 * @example
 * ```ts
 * import { openRedisScheduleStore } from "@celeriac/celeriac/transports";
 * const store = await openRedisScheduleStore("redis://127.0.0.1:6379/0");
 * console.log(await store.lease());
 * await store.close();
 * ```
 */
export class RedisScheduleStore implements ScheduleStore {
  readonly #rawUrl: string;
  readonly #client: RedisClient & Scripted;
  readonly #p: string;

  /**
   * Use {@link openRedisScheduleStore}.
   *
   * @param rawUrl the Redis URL
   * @param options key namespace
   */
  constructor(rawUrl: string, options: ScheduleStoreOptions = {}) {
    this.#rawUrl = rawUrl;
    const url = parseRedisUrl(rawUrl);
    const ns = options.namespace ?? DEFAULT_BEAT_NAMESPACE;
    // On Redis Cluster a script runs only when all its keys share a slot:
    // the namespace becomes a hash tag, so all of beat's keys live in one.
    this.#p = (url.query.global_keyprefix ?? "") + (isClusterUrl(rawUrl) ? `{${ns}}` : ns);
    this.#client = openRedisConnection(url, rawUrl, { name: "celeriac-beat" }) as
      & RedisClient
      & Scripted;
    this.#client.defineCommand("beatAcquire", { lua: ACQUIRE, numberOfKeys: 2 });
    this.#client.defineCommand("beatRelease", { lua: RELEASE, numberOfKeys: 1 });
    this.#client.defineCommand("beatCommit", { lua: COMMIT, numberOfKeys: 2 });
    this.#client.defineCommand("beatTypes", { lua: TYPES, numberOfKeys: 4 });
  }

  /** Connect now. */
  connect(): Promise<void> {
    return connectRedis(this.#client, this.#rawUrl);
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await guardRedis(this.#rawUrl, fn);
    } catch (err) {
      throw await this.#wrongKey(err) ?? err;
    }
  }

  /**
   * For a reply that a key holds the wrong kind of value: a
   * {@link ScheduleStoreKeyError} naming the first such key of beat's.
   */
  async #wrongKey(err: unknown): Promise<ScheduleStoreKeyError | null> {
    const message = (err as Error)?.message ?? "";
    if (!/WRONGTYPE|value is not an integer/.test(message)) return null;
    const keys = EXPECTED.map(([role]) => this.#p + role);
    const found = await guardRedis(
      this.#rawUrl,
      () => this.#client.beatTypes(keys[0], keys[1], keys[2], keys[3]),
    ).catch(() => null);
    if (!found) return null;
    const i = EXPECTED.findIndex(([, type], i) => found[i] !== "none" && found[i] !== type);
    if (i >= 0) return new ScheduleStoreKeyError(keys[i], EXPECTED[i][0], `a ${found[i]}`, err);
    const fence = found[EXPECTED.length];
    if (found[1] === "string" && !/^-?\d+$/.test(fence)) {
      return new ScheduleStoreKeyError(
        keys[1],
        "fence",
        `the string ${JSON.stringify(fence)}`,
        err,
      );
    }
    return null;
  }

  async acquire(
    holder: string,
    ttlMs: number,
    onBroken?: (found: BrokenLease) => void,
  ): Promise<number | null> {
    const [token, broken, found] = await this.#run(() =>
      this.#client.beatAcquire(
        this.#p + "lease",
        this.#p + "fence",
        holder,
        String(Math.ceil(ttlMs)),
      )
    );
    if (broken) {
      onBroken?.({
        key: this.#p + "lease",
        value: found ?? "",
        why: broken === "no expiry" ? "it has no expiry" : "it does not read as holder\\ntoken",
      });
    }
    return token < 0 ? null : token;
  }

  async release(holder: string, token: number): Promise<void> {
    await this.#run(() => this.#client.beatRelease(this.#p + "lease", `${holder}\n${token}`));
  }

  async lease(): Promise<LeaseInfo | null> {
    const [[, value], [, ttl]] = await this.#run(() =>
      this.#client.multi().get(this.#p + "lease").pttl(this.#p + "lease").exec()
    ) as [[unknown, string | null], [unknown, number]];
    const m = value ? /^(.*)\n(\d+)$/s.exec(value) : null;
    return m ? { holder: m[1], token: Number(m[2]), ttlMs: Math.max(0, ttl) } : null;
  }

  /** Every field of the hash `<prefix><name>`. */
  async #readHash(name: string): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.#run(() => this.#client.hgetall(this.#p + name))));
  }

  readRuns(): Promise<Map<string, string>> {
    return this.#readHash("runs");
  }

  async commitRun(
    holder: string,
    token: number,
    entry: string,
    expected: string | null,
    next: string,
  ): Promise<CommitOutcome> {
    const r = await this.#run(() =>
      this.#client.beatCommit(
        this.#p + "lease",
        this.#p + "runs",
        `${holder}\n${token}`,
        entry,
        expected ?? "",
        next,
      )
    );
    return r === 1 ? "ok" : r === 0 ? "conflict" : "lost";
  }

  async deleteRun(entry: string): Promise<void> {
    await this.#run(() => this.#client.hdel(this.#p + "runs", entry));
  }

  readEntries(): Promise<Map<string, string>> {
    return this.#readHash("entries");
  }

  async putEntry(name: string, value: string): Promise<void> {
    await this.#run(() => this.#client.hset(this.#p + "entries", name, value));
  }

  async deleteEntry(name: string): Promise<boolean> {
    return (await this.#run(() => this.#client.hdel(this.#p + "entries", name))) > 0;
  }

  async close(): Promise<void> {
    await closeRedis(this.#client);
  }
}

/**
 * Open a schedule store on Redis and check that the server answers.
 *
 * @example
 * ```ts
 * import { openRedisScheduleStore } from "@celeriac/celeriac/transports";
 * const store = await openRedisScheduleStore("redis://127.0.0.1:6379/0", { namespace: "billing." });
 * await store.close();
 * ```
 *
 * @param url `redis://` or `rediss://` URL
 * @param options key namespace, signal
 * @returns the store
 * @throws {BrokerConnectionError} when the server cannot be reached
 */
export async function openRedisScheduleStore(
  url: string,
  options: ScheduleStoreOptions = {},
): Promise<RedisScheduleStore> {
  options.signal?.throwIfAborted();
  await prepareRedis(parseRedisUrl(url));
  const store = new RedisScheduleStore(url, options);
  await unlessAborted(store.connect(), options.signal, () => store.close());
  return store;
}
