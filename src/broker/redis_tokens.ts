/**
 * Rate-limit token buckets on Redis, shared by every worker of the server:
 * one hash per bucket (`celeriac.ratelimit.<key>`), refilled and taken from
 * by one atomic script timed by the Redis server's clock.
 *
 * @module
 */

import type { TokenGrant, TokenRequest } from "./port.ts";
import type { RedisScope } from "./redis_commands.ts";
import { RATE_LIMIT_KEY_PREFIX } from "./redis_keys.ts";

/**
 * Take tokens from their buckets, all in one script call.
 *
 * @example
 * ```ts ignore
 * import { acquireTokens } from "./redis_tokens.ts";
 * const [grant] = await acquireTokens(scope, [{ key: "tasks.scrape", rate: 10, capacity: 10, count: 1 }]);
 * if (grant.granted === 0) await sleep(grant.retryAfterMs);
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param requests the buckets and how many tokens of each
 * @returns a grant per request, in order
 */
export async function acquireTokens(
  scope: RedisScope,
  requests: readonly TokenRequest[],
): Promise<TokenGrant[]> {
  if (requests.length === 0) return [];
  const keys = requests.map((r) => scope.k(RATE_LIMIT_KEY_PREFIX + r.key));
  const args = requests.flatMap((r) => [String(r.rate), String(r.capacity), String(r.count)]);
  const flat = await scope.run(() => scope.client.celeriacTokens(keys.length, ...keys, ...args));
  return requests.map((_, i) => ({
    granted: Number(flat[2 * i]),
    retryAfterMs: Number(flat[2 * i + 1]),
  }));
}
