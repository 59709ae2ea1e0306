/**
 * Opening the general Redis connection of a URL (the broker's, the result
 * backend's, the beat store's) as a {@link RedisClient}: on a single server
 * (`redis://`, `rediss://`) Celeriac's own client (resp_client.ts); through
 * Sentinel or on a Cluster an ioredis one (redis_ioredis.ts), whose module,
 * with ioredis and the Node compatibility layer it needs, is loaded by
 * {@link prepareRedis} only for those URLs: a worker on a single server
 * never loads it (about 14 MiB less memory).
 *
 * @module
 */

import type { Redis } from "ioredis";
import { BrokerConnectionError } from "./errors.ts";
import type { RedisClient } from "./redis_client.ts";
import { describeRedisFailure } from "./redis_failures.ts";
import type { RedisConnectionOptions } from "./redis_ioredis.ts";
import { isSingleServer, type RedisUrlOptions } from "./redis_url.ts";
import { RespClient } from "./resp_client.ts";
import { RedisConnectionError } from "./resp_connection.ts";

export type { RedisConnectionOptions };

/** The ioredis module of Sentinel and Cluster URLs, once {@link prepareRedis} loaded it. */
let ioredis: typeof import("./redis_ioredis.ts") | undefined;

/**
 * Load what the connections of a URL need: nothing for a single server;
 * through Sentinel or on a Cluster, ioredis (a dynamic `import()`, once).
 * The `open…` functions of the Redis broker, backend and beat store call it
 * before they open a connection.
 *
 * @example
 * ```ts
 * import { openRedisConnection, prepareRedis } from "./redis_connection.ts";
 * import { parseRedisUrl } from "./redis_url.ts";
 * const url = "sentinel://127.0.0.1:26379/0?master_name=mymaster";
 * await prepareRedis(parseRedisUrl(url));
 * const client = openRedisConnection(parseRedisUrl(url), url);
 * ```
 *
 * @param url the parsed URL
 */
export async function prepareRedis(url: RedisUrlOptions): Promise<void> {
  if (!isSingleServer(url)) await loadIoredis();
}

/**
 * Load ioredis (once): what {@link prepareRedis} does for a Sentinel or
 * Cluster URL, for code that hands this module's functions an ioredis
 * connection of its own.
 *
 * @example
 * ```ts
 * import { loadIoredis } from "./redis_connection.ts";
 * await loadIoredis();
 * ```
 */
export async function loadIoredis(): Promise<void> {
  ioredis ??= await import("./redis_ioredis.ts");
}

/** The ioredis module; a Sentinel or Cluster URL opened without {@link prepareRedis} throws. */
function driver(): typeof import("./redis_ioredis.ts") {
  if (ioredis) return ioredis;
  throw new Error("Sentinel and Cluster URLs need `await prepareRedis(url)` first");
}

/**
 * Open the general connection of a URL. It connects lazily on the first
 * command and reconnects with backoff after a drop.
 *
 * @example
 * ```ts
 * import { openRedisConnection } from "./redis_connection.ts";
 * import { parseRedisUrl } from "./redis_url.ts";
 * const url = "redis://127.0.0.1:6379/0";
 * const redis = openRedisConnection(parseRedisUrl(url), url);
 * await redis.ping();
 * await closeRedis(redis);
 * ```
 *
 * @param url parsed URL settings
 * @param rawUrl the URL text, for log lines (its password is masked)
 * @param options pipelining (ioredis) and naming
 * @returns the connection
 * @throws {Error} for a Sentinel or Cluster URL not prepared ({@link prepareRedis})
 */
export function openRedisConnection(
  url: RedisUrlOptions,
  rawUrl: string,
  options: RedisConnectionOptions = {},
): RedisClient {
  if (isSingleServer(url)) return new RespClient(url, rawUrl, { name: options.name });
  return driver().openRedisConnection(url, rawUrl, options) as unknown as RedisClient;
}

/**
 * A second connection with the same settings (for pub/sub or blocking
 * commands); through ioredis watched like the first (a database that does
 * not exist closes it with an error log instead of falling back to
 * database 0).
 *
 * @example
 * ```ts ignore
 * const sub = duplicateRedis(client, "redis://127.0.0.1:6379/0", "celeriac-replies", true);
 * ```
 *
 * @param client the connection to copy
 * @param rawUrl its URL, for log lines
 * @param name connection name shown by `CLIENT LIST`
 * @param blocking for blocking commands (`BLMOVE`, `BRPOP` of at most 1 s):
 *   their replies are waited for 1 s longer than the command timeout
 * @returns the new (lazily connecting) connection
 */
export function duplicateRedis(
  client: RedisClient,
  rawUrl: string,
  name: string,
  blocking = false,
): RedisClient {
  if (client instanceof RespClient) return client.duplicate(name, blocking);
  return driver().duplicateRedis(client as unknown as Redis, rawUrl, name, blocking) as
    & Redis
    & RedisClient;
}

/**
 * Through Sentinel, PING an idle ioredis subscriber connection now and then
 * (see `keepPinging` in redis_ioredis.ts); nothing on other connections.
 *
 * @example
 * ```ts ignore
 * const sub = duplicateRedis(client, url, "celeriac-results") as unknown as Redis;
 * keepPinging(sub);
 * ```
 *
 * @param conn an ioredis subscriber connection from {@link duplicateRedis}
 */
export function keepPinging(conn: Redis): void {
  driver().keepPinging(conn);
}

/**
 * Connect now, turning a failure into a {@link BrokerConnectionError}.
 *
 * @example
 * ```ts ignore
 * await connectRedis(client, "redis://127.0.0.1:6379/0");
 * ```
 *
 * @param client a lazily connecting client
 * @param rawUrl its URL, for the error
 */
export async function connectRedis(client: RedisClient, rawUrl: string): Promise<void> {
  if (!(client instanceof RespClient)) {
    return await driver().connectRedis(client as unknown as Redis, rawUrl);
  }
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    // What Deno said (a refused connect, a name that does not resolve, no net permission).
    const real = err instanceof RedisConnectionError && err.cause instanceof Error
      ? err.cause
      : err;
    throw new BrokerConnectionError(rawUrl, real, describeRedisFailure(real, rawUrl));
  }
}

/**
 * The error to report for a failed command on an ioredis connection: a
 * {@link BrokerConnectionError} naming the missing database when that is why
 * the connection was closed, else the error itself.
 *
 * @example
 * ```ts ignore
 * await sub.subscribe("x").catch((err) => { throw redisFailure(sub, url, err); });
 * ```
 *
 * @param conn the ioredis connection the command ran on
 * @param rawUrl its URL, for the error
 * @param err what the command failed with
 * @returns the error to throw
 */
export function redisFailure(conn: Redis, rawUrl: string, err: unknown): unknown {
  return driver().redisFailure(conn, rawUrl, err);
}

/**
 * Close a connection: the replies due arrive first (for at most
 * `CLOSE_WAIT_MS`), then it is dropped.
 *
 * @example
 * ```ts ignore
 * await closeRedis(client);
 * ```
 *
 * @param client the connection
 */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client instanceof RespClient) return void await client.quit();
  await driver().closeRedis(client as unknown as Redis);
}
