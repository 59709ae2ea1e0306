/**
 * Parse `redis://` / `rediss://` URLs as kombu and Celery accept them.
 *
 * @module
 */

/**
 * Connection settings read from a Redis URL.
 *
 * @example Reading a TLS URL
 * ```ts
 * import { parseRedisUrl, type RedisUrlOptions } from "@celeriac/celeriac/transports";
 * const o: RedisUrlOptions = parseRedisUrl("rediss://worker:s3cret@redis.internal:6380/3");
 * o.tls; // true
 * `${o.username}@${o.host}:${o.port}/${o.db}`; // "worker@redis.internal:6380/3"
 * ```
 */
export interface RedisUrlOptions {
  /** Host name; default `127.0.0.1`. */
  host: string;
  /** Port; default 6379. */
  port: number;
  /** Database number (kombu's virtual host); default 0. */
  db: number;
  /** ACL user name, if any. */
  username?: string;
  /** Password, if any. */
  password?: string;
  /** True for `rediss://` (TLS). */
  tls: boolean;
  /** Query-string options (e.g. `visibility_timeout`, `global_keyprefix`). */
  query: Record<string, string>;
}

/**
 * Parse a Redis URL: `redis://[[user]:password@]host[:port][/db][?opt=value...]`.
 *
 * @example
 * ```ts
 * import { parseRedisUrl } from "@celeriac/celeriac/transports";
 * const o = parseRedisUrl("redis://:pw@10.0.0.5:6380/2?visibility_timeout=60");
 * // o.host === "10.0.0.5", o.port === 6380, o.db === 2, o.password === "pw",
 * // o.query.visibility_timeout === "60"
 * ```
 *
 * @param url the URL
 * @returns the parsed settings
 * @throws {TypeError} when the URL is not a Redis URL or its db is not a number
 */
export function parseRedisUrl(url: string): RedisUrlOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`Invalid Redis URL "${url}": expected redis://host:port/db`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new TypeError(`Not a Redis URL: "${url}" (use redis:// or rediss://)`);
  }
  const dbText = u.pathname.replace(/^\//, "");
  const db = dbText === "" ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new TypeError(`Invalid Redis database "${dbText}" in "${url}": use a number, e.g. /0`);
  }
  const query: Record<string, string> = {};
  for (const [k, v] of u.searchParams) query[k] = v;
  return {
    host: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: u.port ? Number(u.port) : 6379,
    db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === "rediss:",
    query,
  };
}
