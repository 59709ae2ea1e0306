/**
 * Deleting many KV keys, in commits of a bounded size.
 *
 * @module
 */

import { commitAtomic } from "./kv_store.ts";

/** Keys deleted per commit by {@link deleteKvKeys}. */
const DELETE_BATCH = 100;

/**
 * Delete `keys`, a commit per 100 (each through {@link commitAtomic}); a
 * key already gone is no error.
 *
 * @example
 * ```ts
 * import { deleteKvKeys } from "./kv_delete.ts";
 * const kv = await Deno.openKv(":memory:");
 * await kv.set(["a"], 1);
 * await deleteKvKeys(kv, [["a"], ["b"]]);
 * kv.close();
 * ```
 *
 * @param kv the database
 * @param keys the keys
 */
export async function deleteKvKeys(kv: Deno.Kv, keys: readonly Deno.KvKey[]): Promise<void> {
  for (let i = 0; i < keys.length; i += DELETE_BATCH) {
    const op = kv.atomic();
    for (const key of keys.slice(i, i + DELETE_BATCH)) op.delete(key);
    await commitAtomic(op);
  }
}
