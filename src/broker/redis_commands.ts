/**
 * The Redis broker's connection as its parts use it: the Lua scripts of
 * redis_scripts.ts and redis_claims.ts registered as typed commands, and
 * {@link RedisScope}, the connection with the broker's key prefix and
 * failure handling that the take, restore, parking and fanout modules share.
 *
 * @module
 */

import type { RedisClient } from "./redis_client.ts";
import { RETURN_CLAIM_SCRIPT } from "./redis_claims.ts";
import type { RespEvents } from "./resp_events.ts";
import type { RespScripts } from "./resp_scripts.ts";
import {
  PARK_SCRIPT,
  RENEW_SCRIPT,
  RESTORE_SCRIPT,
  TAKE_SCRIPT,
  TOKENS_SCRIPT,
  UNLOCK_SCRIPT,
  UNPARK_SCRIPT,
} from "./redis_scripts.ts";

/**
 * A Redis connection with the transport's scripts defined as commands
 * (see {@link defineScripts}).
 *
 * @example
 * ```ts
 * import type { ScriptedRedis } from "./redis_commands.ts";
 * declare const client: ScriptedRedis;
 * await client.celeriacUnlock("unacked_mutex", "token");
 * ```
 */
export type ScriptedRedis = RedisClient & {
  celeriacTake(numKeys: number, ...args: string[]): Promise<string[]>;
  celeriacRestore(...args: string[]): Promise<number>;
  celeriacPark(...args: string[]): Promise<number>;
  celeriacUnpark(numKeys: number, ...args: string[]): Promise<number>;
  celeriacUnlock(...args: string[]): Promise<number>;
  celeriacRenew(...args: string[]): Promise<number>;
  celeriacTokens(numKeys: number, ...args: string[]): Promise<number[]>;
  celeriacReturnClaim(...args: string[]): Promise<number>;
};

/**
 * Define the transport's scripts as commands of `client` (sent as
 * EVALSHA, falling back to EVAL when the server does not know a script).
 *
 * @example
 * ```ts
 * import { defineScripts } from "./redis_commands.ts";
 * import { openRedisConnection } from "./redis_connection.ts";
 * import { parseRedisUrl } from "./redis_url.ts";
 * const url = "redis://127.0.0.1:6379/0";
 * const client = defineScripts(openRedisConnection(parseRedisUrl(url), url));
 * ```
 *
 * @param client the connection
 * @returns the same connection, typed with the commands
 */
export function defineScripts(client: RedisClient): ScriptedRedis {
  client.defineCommand("celeriacTake", { lua: TAKE_SCRIPT });
  client.defineCommand("celeriacRestore", { lua: RESTORE_SCRIPT, numberOfKeys: 3 });
  client.defineCommand("celeriacPark", { lua: PARK_SCRIPT, numberOfKeys: 4 });
  client.defineCommand("celeriacUnpark", { lua: UNPARK_SCRIPT });
  client.defineCommand("celeriacUnlock", { lua: UNLOCK_SCRIPT, numberOfKeys: 1 });
  client.defineCommand("celeriacRenew", { lua: RENEW_SCRIPT, numberOfKeys: 1 });
  client.defineCommand("celeriacTokens", { lua: TOKENS_SCRIPT });
  client.defineCommand("celeriacReturnClaim", {
    lua: RETURN_CLAIM_SCRIPT,
    numberOfKeys: 3,
  });
  return client as ScriptedRedis;
}

/**
 * What {@link RedisScope.run} is given besides its commands.
 *
 * @example
 * ```ts ignore
 * const key = scope.k("_kombu.binding.celery");
 * await scope.run(() => scope.client.sadd(key, member), { keys: [key] });
 * ```
 */
export interface RedisRunOptions {
  /**
   * Stops sending the commands again during a failover (a take that ended);
   * the broker's close stops it either way. Default none.
   */
  signal?: AbortSignal;
  /**
   * The keys the commands write or read: on a Cluster, a failure naming no
   * node is not sent again once the master of one of their slots is known
   * down with no replica. Default none: such a failure is sent again until
   * the failover wait ends.
   */
  keys?: readonly string[];
}

/**
 * One Redis broker's view of its server: the connection, the URL it was
 * opened from (for error messages and duplicate connections), its key
 * prefix and its failure translation.
 *
 * @example
 * ```ts
 * import type { RedisScope } from "./redis_commands.ts";
 * declare const scope: RedisScope;
 * const depth = await scope.run(() => scope.client.llen(scope.k("celery")));
 * ```
 */
export interface RedisScope {
  /** The broker's connection (auto-pipelined, scripts defined). */
  readonly client: ScriptedRedis;
  /** The broker URL as given (credentials are masked where it is shown). */
  readonly rawUrl: string;
  /** The database number, part of fanout channel names. */
  readonly db: number;
  /** `key` with the broker's key prefix. */
  k(key: string): string;
  /**
   * Run commands, turning a connection failure into a `BrokerConnectionError`;
   * through Sentinel or Cluster they are sent again during a failover
   * (`guardRedis`) until `options.signal` aborts (a take that ended) or the broker closes, or,
   * on a Cluster, the master of `options.keys`' slots is known down with no replica.
   */
  run<T>(fn: () => Promise<T>, options?: RedisRunOptions): Promise<T>;
  /** The events traffic's own connections, on a single server (not Sentinel or Cluster). */
  readonly events?: RespEvents;
  /**
   * The connection of takes, acknowledgements and publishes' LPUSHes, on a single server (not
   * Sentinel or Cluster, where `client` runs them); its failures are
   * `BrokerConnectionError`s already.
   */
  readonly resp?: RespScripts;
}
