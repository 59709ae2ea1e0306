/**
 * Parse `redis://` / `rediss://` URLs as kombu and Celery accept them, and
 * kombu's Redis Sentinel form: `sentinel://[:password@]host:port[/db]`,
 * several joined with `;` (one per Sentinel), with the monitored master's
 * name in `?master_name=` (kombu's `master_name` transport option) and
 * Sentinel's own credentials in `?sentinel_password=` /
 * `?sentinel_username=` (kombu's `sentinel_kwargs`). The password in the
 * URL is the Redis servers' password, as with kombu.
 *
 * @module
 */

import {
  noteUrlOptions,
  REDIS_URL_OPTIONS,
  type RedisUrlOption,
  type UrlQuery,
  urlQuery,
} from "./url_options.ts";
import { maskPassword } from "./errors.ts";
import { MAX_TIMER_MS } from "./long_timeout.ts";
import { urlPortProblem } from "./url_syntax.ts";
import {
  commaJoinedAsParts,
  firstPartServer,
  mergedPartQueries,
  type SentinelPartServer,
} from "./redis_sentinel_url.ts";

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
  /**
   * Database number: the URL's `?db=`, else its path (kombu's virtual
   * host); default 0. The query wins, as with redis-py and Celery's Redis
   * result backend.
   */
  db: number;
  /** ACL user name, if any. */
  username?: string;
  /** Password, if any. */
  password?: string;
  /** True for `rediss://` (TLS). */
  tls: boolean;
  /**
   * Query-string options, as given (e.g. `visibility_timeout`,
   * `global_keyprefix`), typed to those Celeriac reads.
   */
  query: UrlQuery<RedisUrlOption>;
  /**
   * `sentinel://` URLs: the Sentinels to ask for the master (then `host`
   * and `port` are the first Sentinel's).
   */
  sentinels?: { host: string; port: number }[];
  /** `sentinel://` URLs: the name of the master the Sentinels monitor (`?master_name=`). */
  masterName?: string;
  /** `sentinel://` URLs: Sentinel's password (`?sentinel_password=`), when it has one. */
  sentinelPassword?: string;
  /** `sentinel://` URLs: Sentinel's ACL user (`?sentinel_username=`). */
  sentinelUsername?: string;
  /**
   * `redis+cluster://` URLs: the cluster nodes to start from (then `host`
   * and `port` are the first one's).
   */
  cluster?: { host: string; port: number }[];
  /**
   * `redis+cluster://` URLs: the query as written, `?` included (`""` for
   * none), so the URL's other parts can be kept without parsing it again.
   */
  search?: string;
}

/**
 * Whether a URL names a Redis Cluster (`redis+cluster://` or `rediss+cluster://`).
 *
 * @example
 * ```ts
 * import { isClusterUrl } from "@celeriac/celeriac/transports";
 * isClusterUrl("redis+cluster://10.0.0.1:7000,10.0.0.2:7000"); // true
 * ```
 *
 * @param url the URL
 * @returns true for a cluster URL
 */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//i.test(url.trim());
}

/**
 * `redis+cluster://[[user]:password@]host:port[,host:port...][/0][?opt=value...]`:
 * several start nodes separated by commas (the URL class cannot read that
 * authority, so it is split here).
 */
function parseClusterUrl(url: string): RedisUrlOptions {
  const m = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/i.exec(
    url.trim(),
  );
  if (!m) {
    throw new TypeError(
      `Invalid Redis Cluster URL "${
        maskPassword(url)
      }": expected redis+cluster://host:port,host:port`,
    );
  }
  const [, scheme, auth, hosts, path, search] = m;
  const cluster = hosts.split(",").filter((h) => h !== "").map((h) => {
    const hp = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(h);
    if (!hp) {
      throw new TypeError(`Invalid cluster node "${h}" in "${maskPassword(url)}": use host:port`);
    }
    return { host: hp[1].replace(/^\[|\]$/g, ""), port: Number(hp[2] ?? 6379) };
  });
  if (cluster.length === 0) throw new TypeError(`No cluster node in "${maskPassword(url)}"`);
  const query = urlQuery<RedisUrlOption>(new URLSearchParams(search ?? ""));
  const dbText = query.db ?? (path ?? "").replace(/^\//, "");
  if (dbText !== "" && dbText !== "0") {
    throw new TypeError(
      `Redis Cluster has only database 0, not "${dbText}" in "${maskPassword(url)}"`,
    );
  }
  const colon = auth === undefined ? -1 : auth.indexOf(":");
  const user = auth === undefined ? "" : colon < 0 ? auth : auth.slice(0, colon);
  const pass = auth === undefined || colon < 0 ? "" : auth.slice(colon + 1);
  return {
    host: cluster[0].host,
    port: cluster[0].port,
    db: 0,
    username: user ? decodeURIComponent(user) : undefined,
    password: pass ? decodeURIComponent(pass) : undefined,
    tls: scheme.toLowerCase() === "rediss",
    query,
    cluster,
    search: search ?? "",
  };
}

/**
 * Whether a URL names Redis Sentinels (`sentinel://`).
 *
 * @example
 * ```ts
 * import { isSentinelUrl } from "@celeriac/celeriac/transports";
 * isSentinelUrl("sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26379?master_name=mymaster"); // true
 * isSentinelUrl("redis://127.0.0.1:6379/0"); // false
 * ```
 *
 * @param url the URL
 * @returns true for `sentinel://`
 */
export function isSentinelUrl(url: string): boolean {
  return /^sentinel:\/\//i.test(url.trim());
}

function parseSentinelUrls(url: string): RedisUrlOptions {
  const parts = url.split(";").map((p) => p.trim()).filter((p) => p !== "");
  const queries: [string, string][][] = [];
  const sentinels: { host: string; port: number }[] = [];
  const servers: SentinelPartServer[] = [];
  for (const part of parts) {
    let u: URL;
    try {
      u = new URL(part);
    } catch {
      throw new TypeError(
        `Invalid Sentinel URL "${maskPassword(part)}": expected ${
          commaJoinedAsParts(part) ?? "sentinel://host:26379"
        }`,
      );
    }
    if (u.protocol !== "sentinel:") {
      throw new TypeError(
        `Not a Sentinel URL: "${maskPassword(part)}" in "${
          maskPassword(url)
        }" (join sentinel:// URLs with ;)`,
      );
    }
    if (u.hostname.includes(",")) {
      // "h1,h2:26379" is a valid URL host: one Sentinel named "h1,h2".
      throw new TypeError(
        `Invalid Sentinel URL "${maskPassword(part)}": expected ${commaJoinedAsParts(part)}`,
      );
    }
    queries.push([...u.searchParams]);
    sentinels.push({
      host: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
      port: Number(u.port || 26379),
    });
    const dbText = u.pathname.replace(/^\//, "");
    servers.push({
      db: dbText === "" ? undefined : parseDb(dbText, url),
      username: u.username ? decodeURIComponent(u.username) : undefined,
      password: u.password ? decodeURIComponent(u.password) : undefined,
    });
  }
  if (sentinels.length === 0) throw new TypeError(`No Sentinel in "${maskPassword(url)}"`);
  const { db, username, password } = firstPartServer(servers, parts, url);
  const query = urlQuery<RedisUrlOption>(mergedPartQueries(queries, url));
  if (!query.master_name) {
    throw new TypeError(
      `Sentinel URL "${
        maskPassword(url)
      }" names no master: add ?master_name=<the name in "sentinel monitor">`,
    );
  }
  return {
    host: sentinels[0].host,
    port: sentinels[0].port,
    db: query.db === undefined ? db ?? 0 : parseDb(query.db, url),
    username,
    password,
    tls: false,
    query,
    sentinels,
    masterName: query.master_name,
    sentinelPassword: query.sentinel_password || undefined,
    sentinelUsername: query.sentinel_username || undefined,
  };
}

/**
 * A database number, of a URL's path or its `?db=` (which wins over the
 * path, as with redis-py and Celery's Redis result backend).
 */
function parseDb(dbText: string, url: string): number {
  const db = Number(dbText);
  if (dbText.trim() === "" || !Number.isInteger(db) || db < 0) {
    throw new TypeError(
      `Invalid Redis database "${dbText}" in "${maskPassword(url)}": use a number, e.g. /0`,
    );
  }
  return db;
}

/**
 * Parse a Redis URL: `redis://[[user]:password@]host[:port][/db][?opt=value...]`,
 * or `sentinel://` URLs joined with `;` (see the module's notes).
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
 * @throws {TypeError} when the URL is not a Redis URL, its db is not a number, or a Sentinel URL names no master
 *
 * A query option Celeriac does not read is not refused: it is logged once per URL with what
 * Celeriac does instead (kombu's and redis-py's, see url_options.ts), or as a likely typo.
 */
export function parseRedisUrl(url: string): RedisUrlOptions {
  const parsed = isSentinelUrl(url)
    ? parseSentinelUrls(url)
    : isClusterUrl(url)
    ? parseClusterUrl(url)
    : parseServerUrl(url);
  noteUrlOptions(url, parsed.query, REDIS_URL_OPTIONS, parsed.tls);
  return parsed;
}

/**
 * The server a Redis URL names: its host (an IPv6 address without its
 * brackets; default 127.0.0.1) and port (default 6379).
 *
 * @example
 * ```ts
 * import { serverAddress } from "./redis_url.ts";
 * serverAddress(new URL("redis://:***@[::1]/2")); // { host: "::1", port: 6379 }
 * ```
 *
 * @param u the parsed URL
 * @returns its host and port
 */
export function serverAddress(u: URL): { host: string; port: number } {
  return {
    host: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: u.port ? Number(u.port) : 6379,
  };
}

/** One Redis server's URL: `redis://` or `rediss://`. */
function parseServerUrl(url: string): RedisUrlOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    const port = urlPortProblem(url);
    throw new TypeError(
      `Invalid Redis URL "${maskPassword(url)}": ${port ?? "expected redis://host:port/db"}`,
    );
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new TypeError(`Not a Redis URL: "${maskPassword(url)}" (use redis:// or rediss://)`);
  }
  const query = urlQuery<RedisUrlOption>(u.searchParams);
  const dbText = query.db ?? u.pathname.replace(/^\//, "");
  const db = dbText === "" && query.db === undefined ? 0 : parseDb(dbText, url);
  return {
    ...serverAddress(u),
    db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === "rediss:",
    query,
  };
}

/**
 * Whether a Redis URL names one plain server (`redis://`, `rediss://`), not
 * Sentinel or Cluster: its per-task commands (takes, acknowledgements,
 * result stores) and events then go through Celeriac's own RESP
 * connections (resp_scripts.ts, resp_events.ts) instead of ioredis.
 *
 * @example
 * ```ts
 * import { isSingleServer, parseRedisUrl } from "./redis_url.ts";
 * isSingleServer(parseRedisUrl("redis://127.0.0.1:6379/0")); // true
 * ```
 *
 * @param url the parsed URL
 * @returns true for a single server
 */
export function isSingleServer(url: RedisUrlOptions): boolean {
  return !url.cluster && !url.sentinels;
}

/** A query option in seconds (> 0), in ms, or `undefined` when the URL has none. */
function secondsOption(
  url: RedisUrlOptions,
  rawUrl: string,
  key: RedisUrlOption,
): number | undefined {
  const text = url.query[key];
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (text.trim() === "" || !Number.isFinite(seconds) || seconds <= 0) {
    throw new TypeError(
      `Invalid ${key} "${text}" in "${maskPassword(rawUrl)}": ` +
        `use a positive number of seconds, e.g. ?${key}=10`,
    );
  }
  const ms = Math.ceil(seconds * 1000);
  if (ms > MAX_TIMER_MS) {
    // A timer fires a longer delay after 1 ms: every command or connect would time out at once.
    throw new TypeError(
      `Invalid ${key} "${text}" in "${maskPassword(rawUrl)}": use at most ` +
        `${MAX_TIMER_MS / 1000} seconds (a timer holds 24.8 days)`,
    );
  }
  return ms;
}

/**
 * The reply timeout a Redis URL sets with `?socket_timeout=<seconds>`
 * (redis-py's and Celery's name for it), in ms, or `undefined` when it sets
 * none. Commands left that long without a reply drop Celeriac's own
 * connection (resp_connection.ts), and fail on ioredis' (its
 * `commandTimeout`, see {@link commandTimeoutOf}).
 *
 * @example
 * ```ts
 * import { parseRedisUrl, replyTimeoutOf } from "./redis_url.ts";
 * const url = "redis://127.0.0.1:6379/0?socket_timeout=5";
 * replyTimeoutOf(parseRedisUrl(url), url); // 5000
 * ```
 *
 * @param url the parsed URL
 * @param rawUrl the URL text, for the error
 * @returns milliseconds, or `undefined`
 * @throws {TypeError} when `socket_timeout` is not a positive number of seconds (at most 24.8 days)
 */
export function replyTimeoutOf(url: RedisUrlOptions, rawUrl: string): number | undefined {
  return secondsOption(url, rawUrl, "socket_timeout");
}

/**
 * How long a new connection may take, ms: the URL's
 * `?socket_connect_timeout=<seconds>` (redis-py's and Celery's name), else
 * `undefined` (10 s, the default of Celeriac's own connections and of
 * ioredis'). On Celeriac's own connections it bounds the TCP (and TLS)
 * connect and then the server's answer to the greeting, each; on ioredis'
 * (Sentinel, Cluster), its `connectTimeout`.
 *
 * @example
 * ```ts
 * import { connectTimeoutOf, parseRedisUrl } from "./redis_url.ts";
 * const url = "redis://127.0.0.1:6379/0?socket_connect_timeout=2.5";
 * connectTimeoutOf(parseRedisUrl(url), url); // 2500
 * ```
 *
 * @param url the parsed URL
 * @param rawUrl the URL text, for the error
 * @returns milliseconds, or `undefined`
 * @throws {TypeError} when `socket_connect_timeout` is not a positive number of seconds (at most 24.8 days)
 */
export function connectTimeoutOf(url: RedisUrlOptions, rawUrl: string): number | undefined {
  return secondsOption(url, rawUrl, "socket_connect_timeout");
}

/**
 * How long an ioredis command waits for its reply when the URL sets no
 * `?socket_timeout=`, ms: as long as Celeriac's own RESP connections wait.
 */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

/**
 * How much longer than the command timeout a blocking command's connection
 * waits, ms: the longest a Celeriac `BLMOVE` / `BRPOP` blocks (1 s), so
 * that waiting on an empty queue is never cut.
 */
export const BLOCKING_MS = 1_000;

/**
 * The per-command timeout of the ioredis connections of a Redis URL, ms:
 * its `?socket_timeout=` (seconds), else {@link DEFAULT_COMMAND_TIMEOUT_MS}.
 * A command left that long without a reply (a hung server, a network that
 * drops replies) fails with ioredis' `Command timed out`, a connection
 * failure (`isConnectionFailure` in redis_failures.ts), instead of waiting without end.
 *
 * @example
 * ```ts
 * import { commandTimeoutOf, parseRedisUrl } from "./redis_url.ts";
 * const url = "sentinel://127.0.0.1:26379/0?master_name=m&socket_timeout=5";
 * commandTimeoutOf(parseRedisUrl(url), url); // 5000
 * ```
 *
 * @param url parsed URL settings
 * @param rawUrl the URL text, for the error
 * @returns milliseconds
 * @throws {TypeError} when `socket_timeout` is not a positive number of seconds (at most 24.8 days)
 */
export function commandTimeoutOf(url: RedisUrlOptions, rawUrl: string): number {
  return replyTimeoutOf(url, rawUrl) ?? DEFAULT_COMMAND_TIMEOUT_MS;
}

/**
 * How long a command through Redis Sentinel or on a Redis Cluster is sent
 * again after its connection failed, when the URL sets no
 * `?failover_wait=`, ms: a failover with Sentinel's defaults takes its
 * `down-after-milliseconds` (30 s) and an election (a few seconds), a
 * Cluster's its `cluster-node-timeout` (15 s) and as much again.
 *
 * @example
 * ```ts
 * import { DEFAULT_FAILOVER_WAIT_MS } from "./redis_url.ts";
 * DEFAULT_FAILOVER_WAIT_MS / 1000; // 60 (seconds)
 * ```
 */
export const DEFAULT_FAILOVER_WAIT_MS = 60_000;

/**
 * How long a command through Redis Sentinel or on a Redis Cluster is sent
 * again after its connection failed (a failover under way), ms: the URL's
 * `?failover_wait=<seconds>`, else {@link DEFAULT_FAILOVER_WAIT_MS}; 0 for
 * a single server, whose commands fail at once.
 *
 * @example
 * ```ts
 * import { failoverWaitOf, parseRedisUrl } from "./redis_url.ts";
 * const url = "sentinel://127.0.0.1:26379/0?master_name=m&failover_wait=90";
 * failoverWaitOf(parseRedisUrl(url), url); // 90000
 * ```
 *
 * @param url the parsed URL
 * @param rawUrl the URL text, for the error
 * @returns milliseconds
 * @throws {TypeError} when `failover_wait` is not a number of seconds ≥ 0
 */
export function failoverWaitOf(url: RedisUrlOptions, rawUrl: string): number {
  if (isSingleServer(url)) return 0;
  const text = url.query.failover_wait;
  if (text === undefined) return DEFAULT_FAILOVER_WAIT_MS;
  const seconds = Number(text);
  if (text.trim() === "" || !Number.isFinite(seconds) || seconds < 0) {
    throw new TypeError(
      `Invalid failover_wait "${text}" in "${maskPassword(rawUrl)}": ` +
        "use a number of seconds, e.g. ?failover_wait=60 (0: never send a failed command again)",
    );
  }
  return Math.ceil(seconds * 1000);
}
