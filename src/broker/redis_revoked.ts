/**
 * Revoked task ids on Redis: the `celeriac.revoked` sorted set, each id
 * scored with the time its revocation expires (in seconds), so workers that
 * start later still skip them (Celery's `REVOKES_MAX_AGE`), the
 * {@link REVOKED_KEPT} latest at most (Celery's `REVOKES_MAX`, what a worker
 * keeps in memory).
 *
 * @module
 */

import { chunked } from "./chunks.ts";
import type { RevokedEntry } from "./port.ts";
import type { RedisScope } from "./redis_commands.ts";
import { REVOKED_KEY } from "./redis_keys.ts";
import { newestRevoked } from "./revoked_cap.ts";
import { REVOKED_KEPT } from "./shared_state.ts";

/**
 * Add revoked ids to the `celeriac.revoked` sorted set (an id's later
 * expiry wins), dropping the ones that expired and all but the
 * {@link REVOKED_KEPT} that expire last. Of a longer list only those
 * {@link REVOKED_KEPT} are sent ({@link newestRevoked}), one transaction per
 * 1,000 ids (`VALUES_PER_COMMAND`), each sent once the one before is done: a
 * revoke of 100,000 ids holds neither Redis nor the caller's event loop
 * (heartbeats) for long.
 *
 * @example
 * ```ts ignore
 * import { addRevoked } from "./redis_revoked.ts";
 * await addRevoked(scope, [{ id: taskId, expiresAt: new Date(Date.now() + 3600_000) }]);
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param entries the ids and when their revocation expires, oldest first
 */
export async function addRevoked(
  scope: RedisScope,
  entries: readonly RevokedEntry[],
): Promise<void> {
  const key = scope.k(REVOKED_KEY);
  for (const some of chunked(newestRevoked(entries))) {
    await scope.run(
      () =>
        scope.client.multi()
          .zadd(key, "GT", ...some.flatMap((e) => [String(e.expiresAt.getTime() / 1000), e.id]))
          .zremrangebyscore(key, "-inf", Date.now() / 1000)
          .zremrangebyrank(key, 0, -REVOKED_KEPT - 1)
          .exec(),
      { keys: [key] },
    );
  }
}

/**
 * The revoked ids that have not expired.
 *
 * @example
 * ```ts ignore
 * import { listRevoked } from "./redis_revoked.ts";
 * const revoked = new Set((await listRevoked(scope)).map((e) => e.id));
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @returns the revocations in force
 */
export async function listRevoked(scope: RedisScope): Promise<RevokedEntry[]> {
  const key = scope.k(REVOKED_KEY);
  const flat = await scope.run(
    () => scope.client.zrangebyscore(key, Date.now() / 1000, "+inf", "WITHSCORES"),
    { keys: [key] },
  );
  const out: RevokedEntry[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    out.push({ id: flat[i], expiresAt: new Date(Number(flat[i + 1]) * 1000) });
  }
  return out;
}
