/**
 * Revoked task ids in Deno KV: under `[...ns, "revoked", id]`, each with its
 * expiry time as value and as the entry's own `expireIn`, so workers that
 * start later still skip them (Celery's `REVOKES_MAX_AGE`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KvScope } from "./kv_moves.ts";
import { commitAtomic } from "./kv_store.ts";
import type { RevokedEntry } from "./port.ts";

const log = getLogger(["celeriac", "broker", "kv"]);

/** Revoked ids written per atomic commit. */
const REVOKE_BATCH = 200;

/** The largest key Deno KV writes, in bytes. */
const KV_KEY_MAX_BYTES = 2048;

/** Characters of a refused id that its log line shows. */
const ID_SHOWN = 40;

const utf8 = new TextEncoder();

/**
 * The size of a key as Deno KV encodes it, or a little more: a string or
 * byte part is a type byte, its bytes (a 0 byte escaped to two) and an end
 * byte; a number, bigint or boolean at most a type byte and 8 more.
 */
function keyBytes(key: Deno.KvKey): number {
  let n = 0;
  for (const part of key) {
    if (typeof part === "string" || part instanceof Uint8Array) {
      const bytes = typeof part === "string" ? utf8.encode(part) : part;
      n += 2 + bytes.length + bytes.filter((b) => b === 0).length;
    } else n += 9;
  }
  return n;
}

/**
 * Remember revoked ids until their expiry; those already expired are skipped.
 * An id too long for a Deno KV key (2,048 bytes with the namespace) is
 * skipped with a warning that names the limit: the others are still stored,
 * and workers that got the revoke broadcast still skip that one.
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
  const fit = entries.filter((e) => {
    const bytes = keyBytes(scope.k("revoked", e.id));
    if (bytes <= KV_KEY_MAX_BYTES) return true;
    log.warn(
      "Not remembering revoked id {id} in KV for workers that start later: with the namespace its " +
        "key has {bytes} bytes, over Deno KV's limit of {limit}; running workers told still revoke it",
      { id: JSON.stringify(e.id.slice(0, ID_SHOWN)) + "…", bytes, limit: KV_KEY_MAX_BYTES },
    );
    return false;
  });
  for (let i = 0; i < fit.length; i += REVOKE_BATCH) {
    const op = scope.kv.atomic();
    for (const e of fit.slice(i, i + REVOKE_BATCH)) {
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
