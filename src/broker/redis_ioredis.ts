/**
 * The ioredis connections of Sentinel and Cluster URLs, opened from a parsed
 * Redis URL, with errors logged through LogTape instead of ioredis' console
 * output. Loaded by redis_connection.ts with a dynamic `import()` for those
 * URLs only: a single server never loads ioredis (nor the Node
 * compatibility layer it needs, about 14 MiB of a worker's memory).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Cluster, Redis } from "ioredis";
import { BrokerConnectionError, maskPassword } from "./errors.ts";
import { CLOSED, describeRedisFailure, NOT_CLUSTER } from "./redis_failures.ts";
import {
  BLOCKING_MS,
  commandTimeoutOf,
  connectTimeoutOf,
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_FAILOVER_WAIT_MS,
  failoverWaitOf,
  type RedisUrlOptions,
} from "./redis_url.ts";
import { noteFailure, noteRecovered } from "./redis_guard.ts";
import { watchClusterNodes } from "./redis_cluster_watch.ts";
import { NO_SUCH_MASTER, watchSentinelMaster } from "./redis_sentinel_watch.ts";
import { reconnectWhenHung } from "./redis_sentinel_hang.ts";
import { closeWait } from "./sleep.ts";

const log = getLogger(["celeriac", "redis"]);

/** ioredis' own connect timeout, ms: kept when the URL sets no `?socket_connect_timeout=`. */
const IOREDIS_CONNECT_TIMEOUT_MS = 10_000;

/** Options of {@link openRedisConnection}. */
export interface RedisConnectionOptions {
  /** Queue commands issued in the same tick into one pipeline; default false. */
  autoPipelining?: boolean;
  /** Connection name shown by `CLIENT LIST`. */
  name?: string;
}

/**
 * Open an ioredis connection through Sentinel or to a Cluster. The
 * connection is established lazily on the first command and re-established
 * with backoff after a drop.
 *
 * @example
 * ```ts
 * import { openRedisConnection } from "./redis_ioredis.ts";
 * import { parseRedisUrl } from "./redis_url.ts";
 * const url = "sentinel://127.0.0.1:26379/0?master_name=mymaster";
 * const redis = openRedisConnection(parseRedisUrl(url), url);
 * await redis.ping();
 * redis.disconnect();
 * ```
 *
 * @param url parsed URL settings
 * @param rawUrl the URL text, for log lines (its password is masked)
 * @param options pipelining and naming
 * @returns the connection
 * @throws {TypeError} for a single server's URL (`redis://`, `rediss://`)
 */
export function openRedisConnection(
  url: RedisUrlOptions,
  rawUrl: string,
  options: RedisConnectionOptions = {},
): Redis {
  if (!url.cluster && !url.sentinels) {
    throw new TypeError(
      `${maskPassword(rawUrl)}: an ioredis connection is opened here for Sentinel and Cluster ` +
        "URLs only; a single server's is Celeriac's own (openRedisConnection of redis_connection.ts)",
    );
  }
  const commandTimeout = commandTimeoutOf(url, rawUrl);
  const failoverWait = failoverWaitOf(url, rawUrl);
  if (url.cluster) {
    return openClusterConnection(url, rawUrl, options, commandTimeout, failoverWait);
  }
  /** Whether this connection (or one duplicated from it) was ever up. */
  const started = { ready: false };
  /** The Sentinels that answered they monitor no master of this name (`host:port`). */
  const unaware = new Set<string>();
  const sentinelCount = new Set(url.sentinels!.map((s) => `${s.host}:${s.port}`)).size;
  const where = {
    sentinels: url.sentinels,
    name: url.masterName,
    sentinelPassword: url.sentinelPassword,
    sentinelUsername: url.sentinelUsername,
    // No failoverDetector: with it, a +switch-master that arrives while ioredis
    // is already reconnecting (the old master died) aborts that reconnect and
    // ioredis gives the client up for good ("Connection is closed." forever;
    // seen in about 1 of 8 failovers in tests/redis_sentinel_test.ts). A dead
    // master's socket fails by itself, and a live one that a replica replaced
    // is left at the Sentinels' +switch-master (one subscription per master
    // and process, redis_sentinel_watch.ts); a demoted one answers READONLY,
    // which reconnects through the Sentinels (below).
    // Until the first connect succeeded, no Sentinel answering for
    // SENTINEL_STARTUP_ROUNDS rounds fails the connect (as a redis:// URL
    // fails at once), instead of retrying silently for ever; once up, the
    // connection asks them for as long as it takes (ioredis ends a client
    // whose Sentinels it gave up on).
    // A first connect also fails after one round in which every Sentinel answered that it
    // monitors no master of this name: a setting to change, which no round mends.
    sentinelRetryStrategy: (times: number) =>
      !started.ready && (times > SENTINEL_STARTUP_ROUNDS || unaware.size >= sentinelCount)
        ? null
        : Math.min(100 * 2 ** Math.min(times, 5), 2000),
    // A Sentinel that accepts and never answers: the next one is asked.
    sentinelCommandTimeout: commandTimeout,
  };
  const client = new Redis({
    ...where,
    db: url.db,
    username: url.username,
    password: url.password,
    tls: url.tls ? {} : undefined,
    lazyConnect: true,
    enableAutoPipelining: options.autoPipelining ?? false,
    maxRetriesPerRequest: 3,
    connectionName: options.name,
    commandTimeout,
    connectTimeout: connectTimeoutOf(url, rawUrl) ?? IOREDIS_CONNECT_TIMEOUT_MS,
    // Reconnect attempts at most 500 ms apart, so work resumes soon after Redis is back.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 4), 500),
    // A master demoted by a failover answers writes with READONLY: reconnect
    // (through the Sentinels, to the new master) and resend the command.
    reconnectOnError: (err) => (err.message.startsWith("READONLY") ? 2 : false),
  });
  watchSentinelMaster(client, {
    name: url.masterName!,
    sentinels: url.sentinels!,
    sentinelUsername: url.sentinelUsername,
    sentinelPassword: url.sentinelPassword,
  }, failoverWait);
  watchRedisErrors(client, rawUrl, url.db);
  failoverWaits.set(client, failoverWait);
  client.once("ready", () => started.ready = true);
  client.on("sentinelError", (err: Error) => {
    sentinelErrors.set(client, err);
    const address = NO_SUCH_MASTER.exec(err.message)?.[1];
    if (address === undefined) return;
    unaware.add(address);
    // One Sentinel restarted without its config, the others down, is an outage, not a setting.
    if (unaware.size >= sentinelCount) unknownMasters.set(client, err);
  });
  reconnectWhenHung(client, rawUrl);
  return client;
}

/**
 * Rounds over every Sentinel of a URL (200 ms, 400 ms, 800 ms apart) before
 * a first connect fails: a Sentinel restarting at the same moment is waited
 * for, a wrong address or a missing `--allow-net` is reported.
 */
const SENTINEL_STARTUP_ROUNDS = 3;
/** The last Sentinel each connection could not ask (ioredis's own message names none). */
const sentinelErrors = new WeakMap<Redis, Error>();
/** A Sentinel's "No such master with that name", for each connection that was answered it. */
const unknownMasters = new WeakMap<Redis, Error>();

/**
 * Why a Sentinel cannot be reached, in Deno's words (ioredis reports only
 * "Connection is closed" for it): a TCP connect to it, closed at once.
 *
 * @returns `host:port: reason`, or `null` when it accepts connections
 */
async function dialSentinel(at: { host?: string; port?: number }): Promise<string | null> {
  const hostname = at.host ?? "127.0.0.1";
  const port = at.port ?? 26379;
  try {
    const conn = await Deno.connect({ hostname, port, signal: AbortSignal.timeout(1000) });
    conn.close();
    return null;
  } catch (err) {
    return `${hostname}:${port}: ${(err as Error).message}`;
  }
}

/**
 * A Redis Cluster client (ioredis `Cluster`), typed as the single-node
 * client it stands in for: the commands Celeriac sends are the same, each
 * routed to the master of its key's slot; after a failover the cluster
 * slots are read again and the command goes to the promoted replica.
 */
function openClusterConnection(
  url: RedisUrlOptions,
  rawUrl: string,
  options: RedisConnectionOptions,
  commandTimeout: number,
  failoverWait: number,
): Redis {
  const client = new Cluster(url.cluster!, {
    lazyConnect: true,
    // ioredis' cluster auto-pipelines mix commands of the different queues'
    // slots sent in one tick (several queues taken at once) and then refuse
    // them ("All keys in the pipeline should belong to the same slots
    // allocation group"): commands go one by one.
    enableAutoPipelining: false,
    scaleReads: "master",
    maxRedirections: 32,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 3000),
    redisOptions: {
      username: url.username,
      password: url.password,
      tls: url.tls ? {} : undefined,
      connectionName: options.name,
      maxRetriesPerRequest: 3,
      commandTimeout,
      connectTimeout: connectTimeoutOf(url, rawUrl) ?? IOREDIS_CONNECT_TIMEOUT_MS,
    },
  });
  let lastLogged = 0;
  client.on("error", (err: Error) => {
    const now = Date.now();
    if (now - lastLogged < 5000) return;
    lastLogged = now;
    log.warn("Redis Cluster {url}: {error}", { url: maskPassword(rawUrl), error: err.message });
  });
  // A start node that is a single server refuses the slot discovery, and ioredis then says only
  // "None of startup nodes is available": the refusal is what the failed connect reports.
  client.on("node error", (err: Error, node: string) => {
    if (!/cluster support disabled/.test(err.message)) return;
    lastErrors.set(client as unknown as Redis, new Error(`${node}: ${err.message}`));
  });
  watchClusterNodes(client, url.cluster!.map((n) => `${n.host}:${n.port}`).join(","), failoverWait);
  return client as unknown as Redis;
}

/** The last error each connection reported, to say why a connect failed. */
const lastErrors = new WeakMap<Redis, Error>();
/** How long each Sentinel connection's failed commands are sent again (`?failover_wait=`), ms. */
const failoverWaits = new WeakMap<Redis, number>();
/** Connections whose database does not exist: they are closed for good. */
const badDatabases = new WeakMap<Redis, Error>();

/**
 * Remember a connection's errors (to explain a failed connect) and close it
 * for good when its database does not exist: ioredis only reports a failed
 * `SELECT` and then keeps working in database 0, which would put messages
 * and results where nobody looks.
 */
function watchRedisErrors(conn: Redis, rawUrl: string, db: number): void {
  conn.on("ready", () => noteRecovered(rawUrl));
  conn.on("error", (err: Error) => {
    lastErrors.set(conn, err);
    noteFailure(rawUrl, err);
    if (!/DB index is out of range/i.test(err.message) || badDatabases.has(conn)) return;
    badDatabases.set(conn, err);
    log.error(
      "Redis connection {url}: database {db} does not exist (DB index is out of range); " +
        "the connection is closed instead of using database 0",
      { url: maskPassword(rawUrl), db },
    );
    conn.disconnect();
  });
}

/**
 * A second connection with the same settings (for pub/sub or blocking
 * commands), watched like the first: a database that does not exist closes it
 * with an error log instead of falling back to database 0.
 *
 * @example
 * ```ts ignore
 * const sub = duplicateRedis(client, "redis://127.0.0.1:6379/0", "celeriac-results");
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
  client: Redis,
  rawUrl: string,
  name: string,
  blocking = false,
): Redis {
  const extra = blocking ? BLOCKING_MS : 0;
  if ((client as unknown) instanceof Cluster) {
    const cluster = client as unknown as Cluster;
    const base = cluster.options.redisOptions ?? {};
    return cluster.duplicate(undefined, {
      enableAutoPipelining: false,
      redisOptions: {
        ...base,
        connectionName: name,
        commandTimeout: (base.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS) + extra,
      },
    }) as unknown as Redis;
  }
  const conn = client.duplicate({
    enableAutoPipelining: false,
    connectionName: name,
    commandTimeout: (client.options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS) + extra,
  });
  watchRedisErrors(conn, rawUrl, client.options.db ?? 0);
  if (client.options.sentinels) {
    watchSentinelMaster(
      conn,
      {
        name: client.options.name ?? "",
        sentinels: client.options.sentinels,
        sentinelUsername: client.options.sentinelUsername,
        sentinelPassword: client.options.sentinelPassword,
      },
      failoverWaits.get(client) ?? DEFAULT_FAILOVER_WAIT_MS,
    );
    failoverWaits.set(conn, failoverWaits.get(client) ?? DEFAULT_FAILOVER_WAIT_MS);
    reconnectWhenHung(conn, rawUrl);
  }
  return conn;
}

/** How often an idle subscriber connection through Sentinel is PINGed, at most, ms. */
const PING_EVERY_MS = 25_000;

/**
 * PING a subscriber connection through Sentinel while it is up, every
 * 25 s (or its command timeout, when shorter), until it is closed: an idle
 * subscription sends nothing, so a master that hangs (and is failed over)
 * would keep it without end; a PING left unanswered for the command timeout
 * reconnects it through the Sentinels, where it subscribes again (as
 * Celeriac's own subscriber connections PING to notice a silent drop).
 * Nothing on other connections.
 *
 * @example
 * ```ts ignore
 * const sub = duplicateRedis(client, url, "celeriac-results");
 * keepPinging(sub);
 * ```
 *
 * @param conn a subscriber connection from {@link duplicateRedis}
 */
export function keepPinging(conn: Redis): void {
  if (!conn.options?.sentinels) return;
  const every = Math.min(PING_EVERY_MS, conn.options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS);
  const timer = setInterval(() => {
    if (conn.status === "ready") conn.ping().catch(() => {});
  }, every);
  Deno.unrefTimer(timer);
  conn.once("end", () => clearInterval(timer));
}

/**
 * `client.connect()`, done on a Cluster once the client is ready too:
 * ioredis's Cluster leaves the promise of `connect()` pending for good when
 * its ready check (`CLUSTER INFO`, sent to any node) meets a dead node. It
 * reconnects by itself and the next connection is ready, but that promise
 * is neither resolved nor rejected: a worker started while a master was
 * down waited until its start was given up.
 */
function connectOnce(client: Redis): Promise<void> {
  if (!((client as unknown) instanceof Cluster)) return client.connect();
  return new Promise<void>((resolve, reject) => {
    const ready = () => resolve();
    client.once("ready", ready);
    client.connect().then(resolve, (err) => {
      client.off("ready", ready);
      reject(err);
    });
  });
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
  // Through Sentinel, a master the Sentinels named that refuses is one a failover is replacing:
  // asked again for as long as a command is retried (a first get() or publish of a client
  // during a failover failed at once, where the commands of one connected before ride it out).
  // ioredis then goes on through its Sentinel list and gives up with "All sentinels are
  // unreachable" after a few rounds: once one named a master, that is asked again too.
  const until = client.options.sentinels
    ? Date.now() + (failoverWaits.get(client) ?? DEFAULT_FAILOVER_WAIT_MS)
    : 0;
  let named = false;
  try {
    for (;;) {
      try {
        await connectOnce(client);
        break;
      } catch (err) {
        const why = lastErrorOf(client, err);
        named ||= masterUnreachable(why);
        const again = masterUnreachable(why) ||
          (named && why instanceof Error && /All sentinels are unreachable/.test(why.message));
        if (Date.now() >= until || !again) throw err;
        client.disconnect();
        log.debug("The master the Sentinels named cannot be reached ({error}); asking again", {
          error: (err as Error).message,
        });
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } catch (err) {
    client.disconnect();
    const sentinels = client.options.sentinels;
    if (
      sentinels && !unknownMasters.has(client) && err instanceof Error &&
      /All sentinels are unreachable/.test(err.message)
    ) {
      const why = await dialSentinel(sentinels[0] as { host?: string; port?: number });
      if (why) sentinelErrors.set(client, new Error(why));
    }
    throw connectionError(client, rawUrl, err);
  }
  const bad = badDatabases.get(client);
  if (bad) {
    client.disconnect();
    throw connectionError(client, rawUrl, bad);
  }
}

/** The socket's error behind ioredis's "Connection is closed.", else `err`. */
function lastErrorOf(client: Redis, err: unknown): unknown {
  return err instanceof Error && CLOSED.test(err.message) ? lastErrors.get(client) ?? err : err;
}

/** A connect that reached a Sentinel but not the master it named (not a refusal by Redis). */
function masterUnreachable(err: unknown): boolean {
  return err instanceof Error && !/All sentinels are unreachable/.test(err.message) &&
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|READONLY/.test(err.message);
}

/**
 * The error to report for a failed command on a connection: a
 * {@link BrokerConnectionError} naming the missing database when that is why
 * the connection was closed, else the error itself.
 *
 * @example
 * ```ts ignore
 * await sub.subscribe("x").catch((err) => { throw redisFailure(sub, url, err); });
 * ```
 *
 * @param conn the connection the command ran on
 * @param rawUrl its URL, for the error
 * @param err what the command failed with
 * @returns the error to throw
 */
export function redisFailure(conn: Redis, rawUrl: string, err: unknown): unknown {
  return badDatabases.has(conn) ? connectionError(conn, rawUrl, err) : err;
}

/** A {@link BrokerConnectionError} naming the connection's real failure. */
function connectionError(client: Redis, rawUrl: string, err: unknown): BrokerConnectionError {
  const last = lastErrors.get(client);
  let real = badDatabases.get(client) ??
    (last && NOT_CLUSTER.test(last.message) ? last : lastErrorOf(client, err));
  const sentinel = sentinelErrors.get(client);
  const unknown = unknownMasters.get(client);
  if (unknown && real instanceof Error && /All sentinels are unreachable/.test(real.message)) {
    real = unknown;
  } else if (
    sentinel && real instanceof Error && /All sentinels are unreachable/.test(real.message)
  ) {
    real = new Error(`no Sentinel answered (${sentinel.message})`, { cause: real });
  }
  return new BrokerConnectionError(rawUrl, real, describeRedisFailure(real, rawUrl));
}

/**
 * Close a connection: QUIT when connected (so pending replies arrive), for
 * at most `CLOSE_WAIT_MS`, then disconnect.
 *
 * @example
 * ```ts ignore
 * await closeRedis(client);
 * ```
 *
 * @param client the connection
 */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === "ready") await closeWait(client.quit());
  client.disconnect();
}
