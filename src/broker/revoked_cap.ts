/**
 * The revoked ids worth storing out of a long list: one revoke may name
 * hundreds of thousands (`GroupResult.revoke()` of a big group, a purge
 * script), while a broker keeps and a worker remembers {@link REVOKED_KEPT}.
 *
 * @module
 */

import { REVOKED_KEPT, type RevokedEntry } from "./shared_state.ts";

/**
 * The `kept` entries that expire last; of those expiring at the same time
 * (all the ids of one revoke), the later in the list. Fewer than `kept` are
 * given back as they are.
 *
 * @example
 * ```ts
 * import { newestRevoked } from "./revoked_cap.ts";
 * const expiresAt = new Date(Date.now() + 3_600_000);
 * newestRevoked(["a", "b", "c"].map((id) => ({ id, expiresAt })), 2).map((e) => e.id); // ["b", "c"]
 * ```
 *
 * @param entries revoked ids with their expiry, oldest first
 * @param kept how many to keep (default {@link REVOKED_KEPT})
 * @returns at most `kept` of them, soonest expiry first
 */
export function newestRevoked(
  entries: readonly RevokedEntry[],
  kept: number = REVOKED_KEPT,
): readonly RevokedEntry[] {
  if (entries.length <= kept) return entries;
  const at = (e: RevokedEntry) => e.expiresAt.getTime();
  // The usual case, one revoke's ids (one expiry), needs no sort.
  if (entries.every((e, i) => i === 0 || at(entries[i - 1]) <= at(e))) return entries.slice(-kept);
  // Array.prototype.sort is stable: equal expiries keep their order, the later last.
  return [...entries].sort((a, b) => at(a) - at(b)).slice(-kept);
}
