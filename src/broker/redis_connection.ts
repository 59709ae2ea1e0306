/**
 * Opening ioredis connections from a parsed Redis URL, with errors logged
 * through LogTape instead of ioredis' console output.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Redis } from "ioredis";
import { BrokerConnectionError, maskPassword } from "./errors.ts";
import type { RedisUrlOptions } from "./redis_url.ts";

const log = getLogger(["celeriac", "redis"]);

/** Options of {@link openRedisConnection}. */
export interface RedisConnectionOptions {
  /** Queue commands issued in the same tick into one pipeline; default false. */
  autoPipelining?: boolean;
  /** Connection name shown by `CLIENT LIST`. */
  name?: string;
}

/**
 * Open an ioredis connection. The connection is established lazily on the
 * first command and re-established with backoff after a drop.
 *
 * @example
 * ```ts ignore
 * import { openRedisConnection } from "./redis_connection.ts";
 * import { parseRedisUrl } from "./redis_url.ts";
 * const redis = openRedisConnection(parseRedisUrl("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
 * await redis.ping();
 * redis.disconnect();
 * ```
 *
 * @param url parsed URL settings
 * @param rawUrl the URL text, for log lines (its password is masked)
 * @param options pipelining and naming
 * @returns the connection
 */
export function openRedisConnection(
  url: RedisUrlOptions,
  rawUrl: string,
  options: RedisConnectionOptions = {},
): Redis {
  const client = new Redis({
    host: url.host,
    port: url.port,
    db: url.db,
    username: url.username,
    password: url.password,
    tls: url.tls ? {} : undefined,
    lazyConnect: true,
    enableAutoPipelining: options.autoPipelining ?? false,
    maxRetriesPerRequest: 3,
    connectionName: options.name,
    // Reconnect attempts at most 500 ms apart, so work resumes soon after Redis is back.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 4), 500),
  });
  let lastLogged = 0;
  client.on("error", (err: Error) => {
    const now = Date.now();
    if (now - lastLogged < 5000) return;
    lastLogged = now;
    log.warn("Redis connection {url}: {error}", { url: maskPassword(rawUrl), error: err.message });
  });
  return client;
}

/**
 * Whether an ioredis error means the server could not be reached (as
 * opposed to a command error).
 *
 * @example
 * ```ts ignore
 * isConnectionFailure(new Error("connect ECONNREFUSED 127.0.0.1:6379")); // true
 * ```
 *
 * @param err the error
 * @returns true for connection failures
 */
export function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === "MaxRetriesPerRequestError" ||
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|Connection is closed|Stream isn't writeable/
      .test(err.message);
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
export async function connectRedis(client: Redis, rawUrl: string): Promise<void> {
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new BrokerConnectionError(rawUrl, err);
  }
}

/**
 * Run Redis commands, turning connection failures into a
 * {@link BrokerConnectionError} (command errors pass through).
 *
 * @example
 * ```ts ignore
 * const n = await guardRedis(url, () => client.llen("celery"));
 * ```
 *
 * @param rawUrl the server's URL, for the error
 * @param fn the commands
 * @returns what they return
 */
export async function guardRedis<T>(rawUrl: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isConnectionFailure(err)) throw new BrokerConnectionError(rawUrl, err);
    throw err;
  }
}

/**
 * Close a connection: QUIT when connected (so pending replies arrive), then
 * disconnect.
 *
 * @example
 * ```ts ignore
 * await closeRedis(client);
 * ```
 *
 * @param client the connection
 */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === "ready") await client.quit().catch(() => {});
  client.disconnect();
}
