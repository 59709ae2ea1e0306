/**
 * Revoked task ids in Deno KV: under `[...ns, "revoked", id]`, each with its
 * expiry time as value and as the entry's own `expireIn`, so workers that
 * start later still skip them (Celery's `REVOKES_MAX_AGE`).
 *
 * @module
 */

import type { KvScope } from "./kv_moves.ts";
import { commitAtomic } from "./kv_store.ts";
import type { RevokedEntry } from "./port.ts";

/** Revoked ids written per atomic commit. */
const REVOKE_BATCH = 200;

/**
 * Remember revoked ids until their expiry; those already expired are skipped.
 *
 * @example
 * ```ts ignore
 * import { addRevoked } from "./kv_revoked.ts";
 * await addRevoked(scope, [{ id: taskId, expiresAt: new Date(Date.now() + 3_600_000) }]);
 * ```
 *
 * @param scope the broker's database and namespace
 * @param entries the ids and when to forget them
 */
export async function addRevoked(
  scope: KvScope,
  entries: readonly RevokedEntry[],
): Promise<void> {
  const now = Date.now();
  for (let i = 0; i < entries.length; i += REVOKE_BATCH) {
    const op = scope.kv.atomic();
    for (const e of entries.slice(i, i + REVOKE_BATCH)) {
      const ms = e.expiresAt.getTime() - now;
      if (ms > 0) op.set(scope.k("revoked", e.id), e.expiresAt.getTime(), { expireIn: ms });
    }
    await commitAtomic(op);
  }
}

/**
 * The revoked ids that have not expired.
 *
 * @example
 * ```ts ignore
 * import { listRevoked } from "./kv_revoked.ts";
 * const ids = (await listRevoked(scope)).map((e) => e.id);
 * ```
 *
 * @param scope the broker's database and namespace
 * @returns the ids with their expiry times
 */
export async function listRevoked(scope: KvScope): Promise<RevokedEntry[]> {
  const now = Date.now();
  const out: RevokedEntry[] = [];
  for await (const e of scope.kv.list<number>({ prefix: scope.k("revoked") })) {
    if (e.value > now) {
      out.push({ id: String(e.key[e.key.length - 1]), expiresAt: new Date(e.value) });
    }
  }
  return out;
}
