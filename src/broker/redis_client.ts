/**
 * The Redis commands Celeriac's broker, result backend and beat store send
 * through their general connection, as one interface that two clients
 * satisfy: Celeriac's own client over its RESP connection on a single
 * server (resp_client.ts), and ioredis through Sentinel and on a Cluster
 * (redis_ioredis.ts, loaded only for those URLs). Replies are as ioredis
 * gives them: bulk strings as UTF-8 text, integers as numbers, nil as null.
 *
 * @module
 */

/** A value sent as a command argument. */
export type RedisArg = string | number | Uint8Array;

/**
 * Commands queued in a transaction (`multi()`): each returns the batch, and
 * `exec()` sends them all.
 *
 * @example
 * ```ts
 * import type { RedisClient } from "./redis_client.ts";
 * declare const client: RedisClient;
 * const replies = await client.multi().llen("a").del("a").exec();
 * ```
 */
export interface RedisBatch {
  /** `DEL key...` */
  del(...keys: string[]): RedisBatch;
  /** `EXPIRE key seconds` */
  expire(key: string, seconds: number): RedisBatch;
  /** `GET key` */
  get(key: string): RedisBatch;
  /** `HDEL key field...` */
  hdel(key: string, ...fields: string[]): RedisBatch;
  /** `LLEN key` */
  llen(key: string): RedisBatch;
  /** `PTTL key` */
  pttl(key: string): RedisBatch;
  /** `PUBLISH channel message` */
  publish(channel: string, message: string): RedisBatch;
  /** `SET key value` */
  set(key: string, value: string): RedisBatch;
  /** `SETEX key seconds value` */
  setex(key: string, seconds: number, value: string): RedisBatch;
  /** `ZADD key [options] score member...` */
  zadd(key: string, ...args: (string | number)[]): RedisBatch;
  /** `ZCOUNT key min max` */
  zcount(key: string, min: string | number, max: string | number): RedisBatch;
  /** `ZREM key member...` */
  zrem(key: string, ...members: string[]): RedisBatch;
  /** `ZREMRANGEBYSCORE key min max` */
  zremrangebyscore(key: string, min: string | number, max: string | number): RedisBatch;
  /** `ZREMRANGEBYRANK key start stop` */
  zremrangebyrank(key: string, start: number, stop: number): RedisBatch;
  /**
   * Send the queued commands as `MULTI` ... `EXEC`.
   *
   * @returns each command's error (null when it ran) and reply, in order;
   *   null when the transaction was aborted
   */
  exec(): Promise<[Error | null, unknown][] | null>;
}

/**
 * A connection's commands and life cycle, as Celeriac uses them.
 *
 * @example
 * ```ts
 * import type { RedisClient } from "./redis_client.ts";
 * declare const client: RedisClient;
 * await client.sadd("_kombu.binding.celery", "celery\x06\x16\x06\x16celery");
 * ```
 */
export interface RedisClient {
  /** Connect now (otherwise the first command connects). */
  connect(): Promise<void>;
  /** `QUIT`: the replies due arrive, then the connection closes. */
  quit(): Promise<unknown>;
  /**
   * Close the connection now (`reconnect`: drop it and connect again).
   *
   * @param reconnect connect again after the drop
   */
  disconnect(reconnect?: boolean): void;
  /**
   * Define a Lua script as a command of this connection (and of its
   * transactions): `EVALSHA`, or `EVAL` when the server does not have it.
   *
   * @param name the command's name
   * @param definition the script, and its number of keys (else the first argument gives it)
   */
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
  /** Start a transaction (`MULTI` ... `EXEC`, sent by its `exec()`). */
  multi(): RedisBatch;
  /** `BRPOP key timeout`: `[key, element]`, or null once `timeout` seconds passed. */
  brpop(key: string, timeout: number): Promise<[string, string] | null>;
  /** `DEL key...` */
  del(...keys: string[]): Promise<number>;
  /** `GET key` */
  get(key: string): Promise<string | null>;
  /** `HDEL key field...` */
  hdel(key: string, ...fields: string[]): Promise<number>;
  /** `HGET key field` */
  hget(key: string, field: string): Promise<string | null>;
  /** `HGETALL key`, as an object. */
  hgetall(key: string): Promise<Record<string, string>>;
  /** `HMGET key field...` */
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>;
  /** `HSET key field value` */
  hset(key: string, field: string, value: string): Promise<number>;
  /** `LLEN key` */
  llen(key: string): Promise<number>;
  /** `LPUSH key element...` */
  lpush(key: string, ...elements: string[]): Promise<number>;
  /** `LRANGE key start stop` */
  lrange(key: string, start: number, stop: number): Promise<string[]>;
  /** `PING` */
  ping(): Promise<string>;
  /** `PUBLISH channel message` */
  publish(channel: string, message: string | Uint8Array): Promise<number>;
  /** `SADD key member...` */
  sadd(key: string, ...members: string[]): Promise<number>;
  /** `SET key value PX milliseconds NX`: "OK", or null when the key exists. */
  set(key: string, value: string, px: "PX", ms: number, nx: "NX"): Promise<"OK" | null>;
  /** `SMEMBERS key` */
  smembers(key: string): Promise<string[]>;
  /** `SREM key member...` */
  srem(key: string, ...members: string[]): Promise<number>;
  /** `ZADD key [options] score member...` */
  zadd(key: string, ...args: (string | number)[]): Promise<number | string | null>;
  /** `ZMSCORE key member...`: each member's score, `null` for one not in the set (Redis 6.2). */
  zmscore(key: string, ...members: string[]): Promise<(string | null)[]>;
  /** `ZRANGE key start stop` */
  zrange(key: string, start: string, stop: string): Promise<string[]>;
  /** `ZRANGEBYSCORE key min max [WITHSCORES]` */
  zrangebyscore(
    key: string,
    min: string | number,
    max: string | number,
    withscores?: "WITHSCORES",
  ): Promise<string[]>;
  /** `ZREM key member...` */
  zrem(key: string, ...members: string[]): Promise<number>;
  /** `ZREVRANGEBYSCORE key max min` */
  zrevrangebyscore(key: string, max: string | number, min: string | number): Promise<string[]>;
}
