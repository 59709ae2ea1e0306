/**
 * What an ioredis failure means: a connection failure (retried) or a
 * command error, and which of the usual connect failures it is, with what
 * to change. Pure: messages and URLs in, words out.
 *
 * @module
 */

import { deniedLookup, deniedPermission } from "./denied.ts";
import {
  commandTimeoutOf,
  DEFAULT_COMMAND_TIMEOUT_MS,
  isClusterUrl,
  isSentinelUrl,
  parseRedisUrl,
} from "./redis_url.ts";

/**
 * What Redis answers a connection it refuses because `maxclients` are
 * connected: the error reply `ERR max number of clients reached`, then it
 * closes the connection.
 *
 * @example
 * ```ts
 * MAXCLIENTS_REFUSAL.test("ERR max number of clients reached"); // true
 * ```
 */
export const MAXCLIENTS_REFUSAL = /max number of clients/i;

/**
 * What to change when Redis refuses connections at `maxclients`.
 *
 * @example
 * ```ts ignore
 * log.warn(`Redis refuses new connections: ${MAXCLIENTS_ADVICE}`);
 * ```
 */
export const MAXCLIENTS_ADVICE = "Raise its maxclients (CONFIG SET maxclients N; 10,000 by " +
  "default) or consume fewer queues: a worker holds 4 waiting connections per queue";

/**
 * Say which of the usual connect failures happened, with what to change.
 *
 * @example
 * ```ts
 * describeRedisFailure(new Error("WRONGPASS invalid username-password pair"), "redis://:x@h:6379/0");
 * // { reason: "the user name or password is wrong (WRONGPASS)", hint: "Fix ..." }
 * ```
 *
 * @param err what ioredis reported
 * @param rawUrl the URL that was tried
 * @returns the reason and what to change
 */
export function describeRedisFailure(
  err: unknown,
  rawUrl: string,
): { reason: string; hint?: string; transient?: boolean } {
  const message = err instanceof Error ? err.message : String(err);
  let host = "the server";
  let db = "0";
  try {
    const u = new URL(rawUrl);
    host = `${u.hostname}:${u.port || "6379"}`;
    db = u.pathname.replace(/^\//, "") || "0";
  } catch {
    // parseRedisUrl already accepted it; keep the generic words
  }
  if (/WRONGPASS|invalid password|invalid username-password/i.test(message)) {
    return {
      reason: `the user name or password is wrong (WRONGPASS: ${message})`,
      hint: "Fix the credentials in the URL: redis://[user]:password@host:port/db",
      transient: false,
    };
  }
  if (/AUTH <password> called without any password configured/i.test(message)) {
    return {
      reason: `the server has no password (${message.replace(/[.?\s]+$/, "")})`,
      hint: "Remove the password from the URL: redis://host:port/db (or set one on the server: " +
        "requirepass)",
      transient: false,
    };
  }
  if (/NOAUTH|Authentication required/i.test(message)) {
    return {
      reason: `the server requires a password and none was given (NOAUTH: ${message})`,
      hint: "Put the password in the URL: redis://:password@host:port/db",
      transient: false,
    };
  }
  if (refusedForReplicas(err)) {
    return {
      reason: `the master refuses writes until its replicas catch up (${message})`,
      hint: "Wait for the replica (or start it again), or lower the master's " +
        "min-replicas-to-write / raise min-replicas-max-lag; with replica-serve-stale-data no, " +
        "a replica answers MASTERDOWN while its link to the master is down",
      transient: true,
    };
  }
  if (/No such master with that name/i.test(message)) {
    let name = "";
    try {
      name = parseRedisUrl(rawUrl).masterName ?? "";
    } catch {
      // a URL that does not parse was refused before any connect
    }
    return {
      reason: `the Sentinels monitor no master named "${name}" (${message})`,
      hint: `Set ?master_name= to the name in the Sentinels' "sentinel monitor <name> ..." ` +
        "(redis-cli -p 26379 SENTINEL MASTERS lists them)",
      transient: false,
    };
  }
  if (MAXCLIENTS_REFUSAL.test(message)) {
    return {
      reason: `${host} refuses new connections: maxclients are connected (${message})`,
      hint: MAXCLIENTS_ADVICE,
    };
  }
  const denied = deniedLookup(err, rawUrl) ?? deniedPermission(err);
  if (denied) return denied;
  if (/ENOTFOUND|EAI_AGAIN|EAI_NONAME|getaddrinfo|failed to lookup address/i.test(message)) {
    return {
      reason: `the host name of ${host} does not resolve (DNS: ${message})`,
      hint: "Check the host name in the URL",
    };
  }
  if (/ECONNREFUSED|Connection refused/i.test(message)) {
    // A Sentinel or Cluster URL lists several hosts, and the master a Sentinel names is none of
    // them: the one refused is in the message.
    const refused = /ECONNREFUSED (\S+)/.exec(message)?.[1];
    const where = refused && (host === "the server" || !isSingleServerUrl(rawUrl)) ? refused : host;
    return { reason: `connection refused: nothing listens on ${where} (${message})` };
  }
  if (TIMED_OUT.test(message)) {
    let seconds = DEFAULT_COMMAND_TIMEOUT_MS / 1000;
    try {
      seconds = commandTimeoutOf(parseRedisUrl(rawUrl), rawUrl) / 1000;
    } catch {
      // a URL that does not parse was refused before any command
    }
    return {
      reason: `no reply within ${seconds} s (${message}): the server hangs, ` +
        "or the network drops its replies",
      hint: "Check that the server answers (not paused, blocked by a long command or swapping); " +
        "?socket_timeout=<seconds> in the URL sets how long a command waits",
    };
  }
  if (/certificate|CERT_|unknown ?issuer|UnknownIssuer|NotValidForName/i.test(message)) {
    // Deno trusts its own root store: a private CA's certificate is refused, and the default
    // hint ("check that the server runs") points away from the fix.
    return {
      reason: `the TLS certificate of ${host} is not trusted (${message})`,
      hint: "Start the process with DENO_CERT=/path/to/ca.pem (the CA that signed the " +
        "server's certificate) or --unsafely-ignore-certificate-errors=host for a test set-up; " +
        "the host in the URL must be a name or address the certificate was issued for",
      transient: false,
    };
  }
  const single = NOT_CLUSTER.exec(message);
  if (single) {
    const node = single[1];
    return {
      reason: `${node} is a single Redis server, not a Redis Cluster node (${single[2]})`,
      hint: `Use redis://${node}/0 for a single server (sentinel:// through Redis Sentinel); ` +
        "redis+cluster:// is for the nodes of a Redis Cluster (cluster-enabled yes)",
      transient: false,
    };
  }
  const redirect = isSingleServerUrl(rawUrl) ? clusterNodeReplyOf(err) : undefined;
  if (redirect) {
    const scheme = rawUrl.startsWith("rediss:") ? "rediss+cluster" : "redis+cluster";
    return {
      reason: `${host} is a Redis Cluster node, which a single-server URL cannot use ` +
        `(${redirect.message})`,
      hint: `Use ${scheme}://${host} (with the same password and options; database 0 only) ` +
        "to use the cluster: it is Celeriac's own layout, as Python Celery cannot use a Redis Cluster",
      transient: false,
    };
  }
  if (CLUSTER_SLOT_DOWN.test(message)) {
    return {
      reason: `the Redis Cluster master serving the key's slot is unreachable (${message})`,
      hint: "Start that node again, or give it a replica to take over (the log's " +
        "'Redis Cluster node ... is unreachable' line names it)",
    };
  }
  if (/DB index is out of range/i.test(message)) {
    return {
      reason: `database ${db} does not exist on ${host} (DB index is out of range)`,
      hint: "Use a database number below the server's `databases` setting (16 by default: 0-15)",
      transient: false,
    };
  }
  return { reason: message };
}

/**
 * Whether a reply error on a single-server URL (`redis://`, `rediss://`)
 * says the server is a Redis Cluster node: a redirect to the node serving
 * the key's slot (`MOVED`, `ASK`), keys of several slots in one command
 * (`CROSSSLOT`), or a database other than 0 refused (`SELECT is not
 * allowed in cluster mode`), also as the cause of an `EXECABORT` (a
 * transaction's command refused as it was queued, in `previousErrors`).
 * Only a `redis+cluster://` URL fixes it; on a Cluster URL ioredis follows
 * the redirects itself.
 *
 * @example
 * ```ts
 * isClusterNodeReply(new Error("MOVED 9041 10.0.0.2:7001"), "redis://10.0.0.1:7000/0"); // true
 * isClusterNodeReply(new Error("MOVED 9041 10.0.0.2:7001"), "redis+cluster://10.0.0.1:7000"); // false
 * ```
 *
 * @param err the error a command or the connect failed with
 * @param rawUrl the URL it was sent through
 * @returns true when the URL names a Cluster node as if it were a single server
 */
export function isClusterNodeReply(err: unknown, rawUrl: string): boolean {
  return isSingleServerUrl(rawUrl) && clusterNodeReplyOf(err) !== undefined;
}

/**
 * The reply only a Cluster node gives among `err` and the errors of the
 * commands before an `EXECABORT` (`previousErrors`, ioredis's and Celeriac's
 * own client's), each looked at once (see {@link refusedAsReplica}).
 */
function clusterNodeReplyOf(err: unknown, seen: Set<unknown> = new Set()): Error | undefined {
  if (!(err instanceof Error) || seen.has(err)) return undefined;
  seen.add(err);
  if (/^(MOVED|ASK|CROSSSLOT) |SELECT is not allowed in cluster mode/.test(err.message)) {
    return err;
  }
  const previous = (err as { previousErrors?: unknown[] }).previousErrors ?? [];
  for (const e of previous) {
    const found = clusterNodeReplyOf(e, seen);
    if (found) return found;
  }
  return undefined;
}

/** Whether a URL names one server (not Sentinels, not a Cluster's nodes). */
function isSingleServerUrl(rawUrl: string): boolean {
  return !isSentinelUrl(rawUrl) && !isClusterUrl(rawUrl);
}

/**
 * A start node of a `redis+cluster://` URL that is a single server, as
 * noted by the Cluster connection: `<host:port>: ERR This instance has
 * cluster support disabled` (the node, then its reply).
 */
export const NOT_CLUSTER: RegExp = /^(\S+): (ERR This instance has cluster support disabled)/;

/** ioredis' message for a command left without a reply for its `commandTimeout`. */
export const TIMED_OUT: RegExp = /^Command timed out/;

/** ioredis's messages for a command that met a closed connection (the cause is an earlier error). */
export const CLOSED: RegExp =
  /Connection is closed|Command aborted due to connection close|Stream isn't writeable/;

/**
 * ioredis's message for a Cluster command whose slot's master is
 * unreachable: the connection to it fails, another node answers `MOVED`
 * back to it, and after `maxRedirections` rounds the command is refused
 * (seen with a master SIGKILLed and no replica to take over).
 */
export const CLUSTER_SLOT_DOWN: RegExp = /^Too many Cluster redirections/;

/**
 * Whether a Redis error means the server could not be reached (as opposed
 * to a command error): a `RedisConnectionError` of Celeriac's own
 * connections, a server still loading its data (`LOADING`), and ioredis'
 * failures. That includes ioredis's `AbortError` for
 * the rest of a pipeline or transaction cut off by the connection closing:
 * some of its commands may have run, so what retries it repeats them
 * (at-least-once, as kombu's publish retry); and a command left without a
 * reply for the command timeout (`Command timed out`: it may have run too);
 * and on a Cluster a slot whose master is unreachable
 * ({@link CLUSTER_SLOT_DOWN}).
 *
 * @example
 * ```ts
 * isConnectionFailure(new Error("connect ECONNREFUSED 127.0.0.1:6379")); // true
 * ```
 *
 * @param err the error
 * @returns true for connection failures
 */
export function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === "MaxRetriesPerRequestError" || err.name === "RedisConnectionError" ||
    (err.name === "RedisReplyError" && err.message.startsWith("LOADING")) ||
    refusedForReplicas(err) ||
    CLOSED.test(err.message) || TIMED_OUT.test(err.message) ||
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|CLUSTERDOWN|TRYAGAIN|Failed to refresh slots cache|None of startup nodes is available/
      .test(err.message) ||
    CLUSTER_SLOT_DOWN.test(err.message);
}

/**
 * Whether a Redis reply error says a key holds another type than the
 * command expects (`WRONGTYPE`: a hash where a string was expected), which
 * means something other than Celery or Celeriac wrote the key.
 *
 * @example
 * ```ts
 * isWrongType(new Error("WRONGTYPE Operation against a key holding the wrong kind of value")); // true
 * ```
 *
 * @param err the error
 * @returns true for a WRONGTYPE reply
 */
export function isWrongType(err: unknown): err is Error {
  return err instanceof Error && err.message.startsWith("WRONGTYPE");
}

/**
 * Whether Redis refused a write as a replica (READONLY), also as the cause of
 * an `EXECABORT` (ioredis's `previousErrors`). Each error is looked at once:
 * a transaction cut off by its connection closing fails every command with
 * one error object, which ioredis then lists among its own `previousErrors`,
 * and following them overflowed the stack (`Settling failed: Maximum call
 * stack size exceeded` when a Sentinel master died mid-drain, and the
 * acknowledgement was not retried).
 *
 * @example
 * ```ts
 * import { refusedAsReplica } from "./redis_failures.ts";
 * refusedAsReplica(new Error("READONLY You can't write against a read only replica.")); // true
 * ```
 *
 * @param err the error
 * @param seen the errors already looked at
 * @returns true when a replica refused the write
 */
export function refusedAsReplica(err: unknown, seen: Set<unknown> = new Set()): boolean {
  if (!(err instanceof Error) || seen.has(err)) return false;
  seen.add(err);
  const previous = (err as { previousErrors?: unknown[] }).previousErrors ?? [];
  return err.message.startsWith("READONLY") || previous.some((e) => refusedAsReplica(e, seen));
}

/**
 * Whether Redis refused a command for want of replicas, for a while:
 * `NOREPLICAS` (a master with `min-replicas-to-write` set and fewer replicas
 * connected and in sync: the guard against writes lost in a failover) or
 * `MASTERDOWN` (a replica with `replica-serve-stale-data no` whose link to
 * its master is down), also inside a script's error or as the cause of an
 * `EXECABORT` (`previousErrors`, each looked at once as in
 * {@link refusedAsReplica}). Nothing was written: the command is safe to
 * send again.
 *
 * @example
 * ```ts
 * import { refusedForReplicas } from "./redis_failures.ts";
 * refusedForReplicas(new Error("NOREPLICAS Not enough good replicas to write.")); // true
 * ```
 *
 * @param err the error
 * @param seen the errors already looked at
 * @returns true for NOREPLICAS or MASTERDOWN
 */
export function refusedForReplicas(err: unknown, seen: Set<unknown> = new Set()): boolean {
  if (!(err instanceof Error) || seen.has(err)) return false;
  seen.add(err);
  const previous = (err as { previousErrors?: unknown[] }).previousErrors ?? [];
  return /^(NOREPLICAS|MASTERDOWN) /.test(err.message) ||
    previous.some((e) => refusedForReplicas(e, seen));
}
