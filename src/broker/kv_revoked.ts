/**
 * Revoked task ids in Deno KV: under `[...ns, "revoked", id]`, each with its
 * expiry time as value and as the entry's own `expireIn`, so workers that
 * start later still skip them (Celery's `REVOKES_MAX_AGE`); the
 * {@link REVOKED_KEPT} that expire last at most (Celery's `REVOKES_MAX`,
 * what a worker keeps in memory), as Redis's sorted set.
 *
 * What is kept is chosen without reading every id: each id also has an
 * index entry `[...ns, "revoked_by_expiry", expiry, hash]` (8 bytes from the id) (its value the
 * id), listed soonest expiry first, and `[...ns, "revoked_count"]` counts the
 * index entries. Every write checks and sets that count in the same atomic
 * commit, so processes sharing a file keep it exact; a trim deletes from the
 * start of the index the expired entries and those past the cap.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KvScope } from "./kv_moves.ts";
import { commitAtomic } from "./kv_store.ts";
import type { RevokedEntry } from "./port.ts";
import { newestRevoked } from "./revoked_cap.ts";
import { REVOKED_KEPT } from "./shared_state.ts";

const log = getLogger(["celeriac", "broker", "kv"]);

/**
 * The part of a KV broker's scope the revoked ids use: the database and
 * its namespace.
 *
 * @example
 * ```ts ignore
 * import type { RevokedScope } from "./kv_revoked.ts";
 * const scope: RevokedScope = { kv, k: (...parts) => ["celeriac", ...parts] };
 * ```
 */
export type RevokedScope = Pick<KvScope, "kv" | "k">;

/** Options of {@link addRevoked}. */
export interface AddRevokedOptions {
  /** How many revoked ids to keep at most, those that expire last; default {@link REVOKED_KEPT} (50,000). */
  kept?: number;
}

/** Revoked ids written per atomic commit (3 mutations each at most, of Deno KV's 1,000). */
const REVOKE_BATCH = 200;

/** Index entries deleted per trim commit (2 mutations each, of Deno KV's 1,000). */
const TRIM_BATCH = 200;

/** Key bytes one commit writes at most (Deno KV refuses over 81,920). */
const COMMIT_KEY_BYTES = 80_000;

/** Keys read per `getMany` (Deno KV's limit). */
const READ_BATCH = 10;

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
 * Eight bytes from an id, which order the index entries of one expiry: two
 * 32-bit multiplicative hashes of its UTF-16 code units (FNV-1a's offset and
 * prime; MurmurHash2's multiplier), each finished with MurmurHash3's mix
 * constants. Two ids collide only with the same expiry to the millisecond
 * and all 64 bits alike; such a pair shares one index entry, so the other
 * id is not trimmed and goes at its expiry. Synchronous:
 * `crypto.subtle.digest` took 70 µs an id, most of storing 50,000.
 */
function idHash(id: string): Uint8Array {
  let a = 0x811c9dc5;
  let b = id.length;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  a = Math.imul(a ^ (a >>> 16), 0x85ebca6b);
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, (a ^ (a >>> 16)) >>> 0);
  view.setUint32(4, (b ^ (b >>> 16)) >>> 0);
  return out;
}

/** An id to store, with its expiry (epoch ms) and index tiebreak. */
interface Pending {
  readonly id: string;
  readonly expires: number;
  readonly hash: Uint8Array;
  /** Bytes of the keys its commit writes. */
  readonly bytes: number;
}

const countKey = (scope: RevokedScope) => scope.k("revoked_count");
const indexKey = (scope: RevokedScope, expires: number, hash: Uint8Array) =>
  scope.k("revoked_by_expiry", expires, hash);

/** The stored expiry of each id (`undefined` when none is stored). */
async function storedExpiries(
  scope: RevokedScope,
  ids: readonly string[],
): Promise<Map<string, number>> {
  const reads = [];
  for (let i = 0; i < ids.length; i += READ_BATCH) {
    reads.push(scope.kv.getMany<number[]>(
      ids.slice(i, i + READ_BATCH).map((id) => scope.k("revoked", id)),
    ));
  }
  const out = new Map<string, number>();
  for (const e of (await Promise.all(reads)).flat()) {
    if (typeof e.value === "number") out.set(String(e.key[e.key.length - 1]), e.value);
  }
  return out;
}

/**
 * Of the ids stored with an earlier expiry than the batch's, those that
 * have their index entry at that expiry (an id stored before the index
 * existed has none, nor one indexed under another tiebreak).
 */
async function indexedIds(
  scope: RevokedScope,
  batch: readonly Pending[],
  stored: ReadonlyMap<string, number>,
): Promise<Set<string>> {
  const moved = batch.flatMap((p) => {
    const before = stored.get(p.id);
    return before !== undefined && before < p.expires
      ? [{ id: p.id, key: indexKey(scope, before, p.hash) }]
      : [];
  });
  const reads = [];
  for (let i = 0; i < moved.length; i += READ_BATCH) {
    reads.push(scope.kv.getMany<string[]>(moved.slice(i, i + READ_BATCH).map((m) => m.key)));
  }
  // An entry holding another id is that id's (same expiry and tiebreak), not this one's.
  const entries = (await Promise.all(reads)).flat();
  return new Set(moved.filter((m, i) => entries[i].value === m.id).map((m) => m.id));
}

/** The count of index entries as stored, 0 when none or below 0 (left by an older version). */
const countOf = (count: Deno.KvEntryMaybe<number>): number => Math.max(0, count.value ?? 0);

/**
 * Store one batch: each id's entry and index entry, replacing an earlier
 * expiry (a later one stored is kept, as Redis's `ZADD GT`), and the count
 * of index entries; retried while another process changes the count. An id
 * stored without its index entry (by a version before the index) is
 * counted as new.
 */
async function storeBatch(scope: RevokedScope, batch: readonly Pending[]): Promise<void> {
  for (;;) {
    const now = Date.now();
    const count = await scope.kv.get<number>(countKey(scope));
    const stored = await storedExpiries(scope, batch.map((p) => p.id));
    const indexed = await indexedIds(scope, batch, stored);
    let n = countOf(count);
    const op = scope.kv.atomic().check(count);
    for (const p of batch) {
      const before = stored.get(p.id);
      if (before !== undefined && before >= p.expires) continue;
      op.set(scope.k("revoked", p.id), p.expires, { expireIn: Math.max(1, p.expires - now) });
      op.set(indexKey(scope, p.expires, p.hash), p.id);
      if (before !== undefined && indexed.has(p.id)) op.delete(indexKey(scope, before, p.hash));
      else n++;
    }
    op.set(countKey(scope), n);
    if ((await commitAtomic(op)).ok) return;
  }
}

/**
 * Delete from the start of the index (soonest expiry first) the entries
 * that expired and those past `kept`, with their ids' entries, a commit
 * per {@link TRIM_BATCH} at most; reads only the entries it deletes and
 * the one after.
 */
async function trim(scope: RevokedScope, kept: number): Promise<void> {
  // Past the entries over the cap, one more is read to see whether it expired, or a whole batch
  // once the last read were all expired.
  let peek = 1;
  for (;;) {
    const now = Date.now();
    const count = await scope.kv.get<number>(countKey(scope));
    const n = countOf(count);
    const limit = Math.min(TRIM_BATCH, Math.max(0, n - kept) + peek);
    const gone: Deno.KvEntry<string>[] = [];
    let bytes = 0;
    const oldest = scope.kv.list<string>(
      { prefix: scope.k("revoked_by_expiry") },
      { limit, batchSize: limit },
    );
    for await (const e of oldest) {
      const past = gone.length < n - kept || (e.key.at(-2) as number) <= now;
      bytes += keyBytes(e.key) + keyBytes(scope.k("revoked", e.value));
      if (!past || bytes > COMMIT_KEY_BYTES) break;
      gone.push(e);
    }
    if (gone.length === 0) return;
    if (gone.length === limit) peek = TRIM_BATCH;
    const stored = await storedExpiries(scope, gone.map((e) => e.value));
    const op = scope.kv.atomic().check(count);
    for (const e of gone) {
      op.delete(e.key);
      if (stored.get(e.value) === e.key.at(-2)) op.delete(scope.k("revoked", e.value));
    }
    op.set(countKey(scope), Math.max(0, n - gone.length));
    await commitAtomic(op);
  }
}

/** The ids that fit a key, deduplicated (the latest expiry wins), not expired. */
function pending(scope: RevokedScope, entries: readonly RevokedEntry[]): Pending[] {
  const now = Date.now();
  const latest = new Map<string, number>();
  for (const e of entries) {
    const expires = e.expiresAt.getTime();
    if (expires <= now || (latest.get(e.id) ?? -Infinity) >= expires) continue;
    const bytes = keyBytes(scope.k("revoked", e.id));
    if (bytes > KV_KEY_MAX_BYTES) {
      log.warn(
        "Not remembering revoked id {id} in KV for workers that start later: with the namespace its " +
          "key has {bytes} bytes, over Deno KV's limit of {limit}; running workers told still revoke it",
        { id: JSON.stringify(e.id.slice(0, ID_SHOWN)) + "…", bytes, limit: KV_KEY_MAX_BYTES },
      );
      continue;
    }
    latest.set(e.id, expires);
  }
  return [...latest].map(([id, expires]) => {
    const hash = idHash(id);
    const index = indexKey(scope, expires, hash);
    return { id, expires, hash, bytes: keyBytes(scope.k("revoked", id)) + 2 * keyBytes(index) };
  });
}

/**
 * Remember revoked ids until their expiry; those already expired are
 * skipped, and only the `kept` that expire last are kept (of a longer
 * list only those are written, {@link newestRevoked}; those stored that
 * expired and the soonest are deleted after each commit). An id stored with
 * a later expiry keeps it. An id too long for a Deno KV key (2,048 bytes
 * with the namespace) is skipped with a warning that names the limit: the
 * others are still stored, and workers that got the revoke broadcast still
 * skip that one.
 *
 * @example
 * ```ts ignore
 * import { addRevoked } from "./kv_revoked.ts";
 * await addRevoked(scope, [{ id: taskId, expiresAt: new Date(Date.now() + 3_600_000) }]);
 * ```
 *
 * @param scope the broker's database and namespace
 * @param entries the ids and when to forget them
 * @param options how many to keep (default {@link REVOKED_KEPT})
 */
export async function addRevoked(
  scope: RevokedScope,
  entries: readonly RevokedEntry[],
  options: AddRevokedOptions = {},
): Promise<void> {
  const kept = options.kept ?? REVOKED_KEPT;
  // Only those that can be kept are written: of 100,000 ids, 50,000 (not all, then trimmed).
  const all = pending(scope, newestRevoked(entries, kept));
  let batch: Pending[] = [];
  let bytes = keyBytes(countKey(scope));
  for (const p of all) {
    if (batch.length === REVOKE_BATCH || bytes + p.bytes > COMMIT_KEY_BYTES) {
      await storeBatch(scope, batch);
      await trim(scope, kept);
      batch = [];
      bytes = keyBytes(countKey(scope));
    }
    batch.push(p);
    bytes += p.bytes;
  }
  if (batch.length > 0) await storeBatch(scope, batch);
  await trim(scope, kept);
}

/**
 * The revoked ids that have not expired, soonest expiry first (the order
 * a worker forgets them in, as it does Redis's).
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
export async function listRevoked(scope: RevokedScope): Promise<RevokedEntry[]> {
  const now = Date.now();
  const out: RevokedEntry[] = [];
  const all = scope.kv.list<number>({ prefix: scope.k("revoked") });
  for await (const e of all) {
    if (e.value > now) {
      out.push({ id: String(e.key[e.key.length - 1]), expiresAt: new Date(e.value) });
    }
  }
  return out.sort((a, b) =>
    a.expiresAt.getTime() - b.expiresAt.getTime() || (a.id < b.id ? -1 : 1)
  );
}
