/**
 * Commands sent again while a Redis Sentinel or Cluster fails over
 * ({@link guardRedis}), and the words a failure is reported with.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { BrokerConnectionError } from "./errors.ts";
import {
  CLOSED,
  CLUSTER_SLOT_DOWN,
  describeRedisFailure,
  isClusterNodeReply,
  isConnectionFailure,
  refusedForReplicas,
  TIMED_OUT,
} from "./redis_failures.ts";
import { isLoneMasterDown } from "./redis_cluster_state.ts";
import { failoverWaitOf, parseRedisUrl } from "./redis_url.ts";
import { sleep } from "./sleep.ts";

const log = getLogger(["celeriac", "redis"]);

/**
 * The last error a connection of each URL reported that says why (not
 * ioredis' "Connection is closed." nor its Sentinel retry chatter), to
 * explain a command that failed with "Connection is closed." or "Reached the
 * max retries per request limit".
 */
const urlErrors = new Map<string, Error>();

/**
 * Remember a connection's error as the reason its URL's commands fail, when
 * it says one (a socket's `connect ECONNREFUSED host:port`, not ioredis'
 * "Connection is closed.").
 *
 * @example
 * ```ts ignore
 * client.on("error", (err) => noteFailure(rawUrl, err));
 * ```
 *
 * @param rawUrl the connection's URL
 * @param err what it reported
 */
export function noteFailure(rawUrl: string, err: Error): void {
  if (CLOSED.test(err.message) || /All sentinels are unreachable\. Retrying/.test(err.message)) {
    return;
  }
  urlErrors.set(rawUrl, err);
}

/**
 * Forget the error a URL's connection reported once it is ready again: a
 * later failure must not be explained by an outage long over.
 *
 * @example
 * ```ts ignore
 * client.on("ready", () => noteRecovered(rawUrl));
 * ```
 *
 * @param rawUrl the connection's URL
 */
export function noteRecovered(rawUrl: string): void {
  urlErrors.delete(rawUrl);
}

/** {@link failoverWaitOf} of each URL given to {@link guardRedis}. */
const urlWaits = new Map<string, number>();

/** How long the failed commands of a URL are sent again, ms (0 on a single server). */
function failoverWaitOfUrl(rawUrl: string): number {
  let wait = urlWaits.get(rawUrl);
  if (wait === undefined) {
    wait = failoverWaitOf(parseRedisUrl(rawUrl), rawUrl);
    urlWaits.set(rawUrl, wait);
  }
  return wait;
}

/**
 * What to report for an ioredis command that failed on a lost connection:
 * the connection's last error that says why (`connect ECONNREFUSED
 * host:port`) rather than ioredis' "Connection is closed." or "Reached the
 * max retries per request limit (which is 3). Refer to ...". Any other
 * error is returned as it is. {@link guardRedis} reports its failures so;
 * a command sent outside it (the wait for messages) is reported through
 * this.
 *
 * @example
 * ```ts ignore
 * conn.blmove(key, claim, "RIGHT", "LEFT", 1).catch((err) => {
 *   throw realFailure(rawUrl, err);
 * });
 * ```
 *
 * @param rawUrl the connection's URL (whose last error is used)
 * @param err what the command failed with
 * @returns the error to report: `the connection was lost: <its error>` (for ioredis' "max
 *   retries" with no error known: `the connection was lost and its reconnect attempts
 *   failed`), or `err`
 */
export function realFailure(rawUrl: string, err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const gaveUp = err.name === "MaxRetriesPerRequestError";
  if (!gaveUp && !CLOSED.test(err.message)) return err;
  const real = urlErrors.get(rawUrl);
  if (real) return new Error(`the connection was lost: ${real.message}`, { cause: err });
  // No connection of the URL said why (a Cluster node's connection does not tell it here).
  return gaveUp
    ? new Error("the connection was lost and its reconnect attempts failed", { cause: err })
    : err;
}

/**
 * Run Redis commands, turning connection failures into a
 * {@link BrokerConnectionError} (command errors pass through, but for a
 * Cluster node's reply on a single-server URL: a `BrokerConnectionError`
 * that is not transient, naming the `redis+cluster://` URL to use). Through
 * Redis Sentinel (`sentinel://`) or Redis Cluster (`redis+cluster://`), a
 * command that failed because the old master went away is sent again,
 * every 250 ms for the URL's `?failover_wait=` (60 s by default: a
 * failover with Sentinel's default `down-after-milliseconds` of 30 s takes
 * 31-35 s), while a replica is promoted and ioredis reconnects to it. A
 * publish may then reach Redis twice (at-least-once, as kombu's publish
 * retry); not on a Cluster when the slot's master is known down with no
 * replica to take over (no failover will come). On a single server the
 * first failure is thrown. A failure is
 * reported with the connection's own error (`connect ECONNREFUSED ...`),
 * not ioredis' "Reached the max retries per request limit". Once `closed`
 * aborts (its owner closed the connection) a failure is thrown at once.
 *
 * @example
 * ```ts ignore
 * const n = await guardRedis(url, () => client.llen("celery"));
 * ```
 *
 * @param rawUrl the server's URL, for the error
 * @param fn the commands
 * @param closed aborted when the owner closed the connection: nothing is sent again
 * @param keys the keys the commands write or read (on a Cluster: whose slot's master to check
 *   when the error names none); default none: such an error is sent again
 * @returns what they return
 */
export async function guardRedis<T>(
  rawUrl: string,
  fn: () => Promise<T>,
  closed?: AbortSignal,
  keys?: readonly string[],
): Promise<T> {
  const until = Date.now() + failoverWaitOfUrl(rawUrl);
  while (true) {
    try {
      return await fn();
    } catch (err) {
      if (isClusterNodeReply(err, rawUrl)) {
        throw new BrokerConnectionError(rawUrl, err, describeRedisFailure(err, rawUrl));
      }
      if (!isConnectionFailure(err)) throw err;
      if (lostUntilBack(rawUrl, err, keys)) throw guardFailure(rawUrl, err, true);
      if (closed?.aborted || Date.now() >= until) throw guardFailure(rawUrl, err);
      log.debug("Redis command failed during a failover ({error}); sending it again", {
        error: (err as Error).message,
      });
      await sleep(250, closed);
      // The sleep ends early on close: nothing is sent after it.
      if (closed?.aborted) throw guardFailure(rawUrl, err);
    }
  }
}

/** Each cluster URL's start nodes (the key of its cluster watch); "" for other URLs. */
const clusterKeys = new Map<string, string>();

/**
 * Whether the cluster watch knows the master of a failed command is down
 * with no replica to take over: no failover will come, so the command is
 * not sent again. ioredis's redirections error names the node of its last
 * `MOVED`, or none; any other connection failure ("Connection is closed."
 * of a `MULTI`/`EXEC` or a script sent to a dead master) names none. Unnamed,
 * that master is the one serving the slot of one of `keys`.
 */
function lostUntilBack(rawUrl: string, err: unknown, keys?: readonly string[]): boolean {
  if (!(err instanceof Error)) return false;
  const redirected = CLUSTER_SLOT_DOWN.test(err.message);
  if (!redirected && !keys?.length) return false;
  const node = redirected ? /MOVED \d+ (\S+)/.exec(err.message)?.[1] : undefined;
  let key = clusterKeys.get(rawUrl);
  if (key === undefined) {
    key = parseRedisUrl(rawUrl).cluster?.map((n) => `${n.host}:${n.port}`).join(",") ?? "";
    clusterKeys.set(rawUrl, key);
  }
  return key !== "" && isLoneMasterDown(key, { node, keys });
}

/**
 * The error guardRedis gives up with: the real failure behind `err`,
 * described; `lost`: its slot's master is known down with no replica (the
 * error may say only "Connection is closed.").
 */
function guardFailure(rawUrl: string, err: unknown, lost = false): BrokerConnectionError {
  const real = realFailure(rawUrl, err);
  if (lost && !CLUSTER_SLOT_DOWN.test((err as Error).message)) {
    return new BrokerConnectionError(rawUrl, real, {
      reason: "the Redis Cluster master serving the key's slot is unreachable and has no " +
        `replica to take over (${(real as Error).message})`,
      hint: "Start that node again, or give it a replica to take over (the log's " +
        "'Redis Cluster node ... is unreachable' line names it)",
    });
  }
  return new BrokerConnectionError(
    rawUrl,
    real,
    TIMED_OUT.test((err as Error).message) || CLUSTER_SLOT_DOWN.test((err as Error).message) ||
      refusedForReplicas(err) || real !== err
      ? describeRedisFailure(real, rawUrl)
      : {},
  );
}
