/**
 * Repairs of the KV broker's records after something else wrote to its
 * keys: a queue's depth counter that is not a `Deno.KvU64` (every commit
 * summing it fails) is reset to the messages waiting, and a malformed entry
 * (kv_entry_check.ts) is moved to `parked`, so that one bad value never
 * stops a take, the restore sweep or a publish.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { commitAtomic } from "./kv_store.ts";
import { depthProblem, keyText } from "./kv_entry_check.ts";
import { nextSeq } from "./kv_message.ts";

const log = getLogger(["celeriac", "broker", "kv"]);

/**
 * 2^64: adding `U64 - n` to a `Deno.KvU64` subtracts `n` (sums wrap).
 *
 * @example
 * ```ts
 * import { U64 } from "./kv_depth.ts";
 * (5n + (U64 - 2n)) % U64; // 3n
 * ```
 */
export const U64 = 2n ** 64n;

/**
 * The keys a repair touches: the database and the broker's namespace.
 *
 * @example
 * ```ts ignore
 * const keys: DepthKeys = { kv, k: (...p) => ["celeriac", ...p], depthKey: (q) => ["celeriac", "depth", q] };
 * ```
 */
export interface DepthKeys {
  /** The database. */
  readonly kv: Deno.Kv;
  /** A key in the broker's namespace. */
  k(...parts: Deno.KvKeyPart[]): Deno.KvKey;
  /** The key of a queue's depth counter. */
  depthKey(queue: string): Deno.KvKey;
}

/**
 * The key of the count of parked messages (a `Deno.KvU64`, summed with every
 * park and requeue), so counting them reads one key, not every message.
 *
 * @example
 * ```ts ignore
 * import { parkedCountKey } from "./kv_depth.ts";
 * const n = await scope.kv.get<Deno.KvU64>(parkedCountKey(scope));
 * ```
 *
 * @param scope the broker's database and namespace
 * @returns the key
 */
export function parkedCountKey(scope: DepthKeys): Deno.KvKey {
  return scope.k("parked-count");
}

/**
 * Read a queue's depth; one that is not a `Deno.KvU64`, or was taken below
 * zero, is reset to the messages waiting (counted; the reset checks that
 * nothing moved meanwhile, and counts again when something did) with a
 * warning naming the key.
 *
 * @example
 * ```ts ignore
 * import { readDepth } from "./kv_depth.ts";
 * const depth = await readDepth(scope, "celery");
 * ```
 *
 * @param keys the database and namespace
 * @param queue the queue
 * @returns the depth
 */
export async function readDepth(keys: DepthKeys, queue: string): Promise<number> {
  const entry = await keys.kv.get(keys.depthKey(queue));
  const problem = depthProblem(entry.value);
  if (problem === null) return Number((entry.value as Deno.KvU64 | null)?.value ?? 0n);
  return await resetDepth(keys, queue, entry, problem);
}

/** Set a queue's depth counter, as read in `entry`, to the messages waiting. */
function resetDepth(
  keys: DepthKeys,
  queue: string,
  entry: Deno.KvEntryMaybe<unknown>,
  problem: string,
): Promise<number> {
  return recount(keys, entry, keys.k("q", queue), `depth counter of queue ${queue}`, problem);
}

/**
 * Set a counter, as read in `entry`, to the number of entries under
 * `prefix`, with a warning naming its key when `problem` says what was
 * wrong with it. The set checks that the counter did not change since it
 * was read (every move of a counted entry sums it); when it did, it is
 * read and counted again, until a set goes through.
 *
 * @example
 * ```ts ignore
 * import { parkedCountKey, recount } from "./kv_depth.ts";
 * const entry = await scope.kv.get(parkedCountKey(scope));
 * await recount(scope, entry, scope.k("parked"), "parked counter", "it is a string");
 * ```
 *
 * @param keys the database and namespace
 * @param entry the counter as read
 * @param prefix the key prefix of the entries it counts
 * @param counter what the counter is, for the warning
 * @param problem what was wrong with it; `null` sets it without a warning
 * @returns the entries counted
 */
export async function recount(
  keys: DepthKeys,
  entry: Deno.KvEntryMaybe<unknown>,
  prefix: Deno.KvKey,
  counter: string,
  problem: string | null,
): Promise<number> {
  let count: number;
  for (;;) {
    count = 0;
    for await (const _ of keys.kv.list({ prefix })) count++;
    const res = await commitAtomic(
      keys.kv.atomic().check(entry).set(entry.key, new Deno.KvU64(BigInt(count))),
    );
    if (res.ok) break;
    entry = await keys.kv.get(entry.key);
  }
  if (problem !== null) {
    log.warn("Reset the {counter} {key} to the {count} entries it counts: {problem}", {
      counter,
      key: keyText(entry.key),
      count,
      problem,
    });
  }
  return count;
}

/**
 * Commit `op`, which sums the depth counters of `queues` (first) and, when
 * `parked` is true, the parked counter (next, before its other mutations).
 * When the commit throws and one of those counters is malformed, it is
 * reset ({@link readDepth}, {@link repairParkedCount}) and a failed result
 * is returned; any other error is thrown. A failed result does not prove
 * that what `op` checks changed: a caller whose checked entries may be
 * unchanged reads them again and makes the commit again (a park spins, a
 * requeue or move back re-reads the entry and retries while its
 * versionstamp is the same). Costs nothing more than {@link commitAtomic}
 * when the commit succeeds.
 *
 * @example
 * ```ts ignore
 * import { commitCounted } from "./kv_depth.ts";
 * const res = await commitCounted(scope, ["celery"], op);
 * if (!res.ok) continue; // read again: a counter reset, or a lost race
 * ```
 *
 * @param keys the database and namespace
 * @param queues the queues whose counters `op` sums
 * @param op the atomic operation
 * @param parked whether `op` sums the parked counter too (default false)
 * @returns the commit's result
 */
export async function commitCounted(
  keys: DepthKeys,
  queues: Iterable<string>,
  op: Deno.AtomicOperation,
  parked = false,
): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
  try {
    return await commitAtomic(op);
  } catch (err) {
    if (await repairDepths(keys, queues)) return { ok: false };
    if (!parked || !await repairParkedCount(keys)) throw err;
    // the depth sums before the failing one were kept (Deno KV 2.9): count those queues again
    for (const queue of new Set(queues)) {
      const entry = await keys.kv.get(keys.depthKey(queue));
      await resetDepth(
        keys,
        queue,
        entry,
        "summed in the commit that failed on the parked counter",
      );
    }
    return { ok: false };
  }
}

/**
 * Make a {@link commitCounted} move of `entry` (one that checks it) and make
 * it again while it fails with `entry` unchanged: a counter it sums was
 * reset meanwhile, so the move itself still holds.
 *
 * @example
 * ```ts ignore
 * import { commitCounted, moveWhileUnchanged } from "./kv_depth.ts";
 * const moved = await moveWhileUnchanged(scope, entry, () =>
 *   commitCounted(scope, [queue], scope.kv.atomic().check(entry).sum(scope.depthKey(queue), 1n)));
 * ```
 *
 * @param keys the database and namespace
 * @param entry the entry the move checks
 * @param move makes the commit (a new atomic operation each time)
 * @returns whether the move was committed (false: `entry` changed)
 */
export async function moveWhileUnchanged(
  keys: DepthKeys,
  entry: Deno.KvEntry<unknown>,
  move: () => Promise<Deno.KvCommitResult | Deno.KvCommitError>,
): Promise<boolean> {
  let res = await move();
  while (!res.ok && (await keys.kv.get(entry.key)).versionstamp === entry.versionstamp) {
    res = await move();
  }
  return res.ok;
}

/**
 * When the parked counter is malformed (not a `Deno.KvU64`, or taken below
 * zero), set it to the parked messages counted, with a warning naming its
 * key; the reset counts again when a park or requeue came meanwhile.
 *
 * @example
 * ```ts ignore
 * import { repairParkedCount } from "./kv_depth.ts";
 * if (await repairParkedCount(scope)) console.log("reset");
 * ```
 *
 * @param keys the database and namespace
 * @returns whether it was malformed
 */
export async function repairParkedCount(keys: DepthKeys): Promise<boolean> {
  const entry = await keys.kv.get(parkedCountKey(keys));
  const problem = depthProblem(entry.value);
  if (problem === null) return false;
  await recount(keys, entry, keys.k("parked"), "parked counter", problem);
  return true;
}

/**
 * When a depth counter of `queues` is malformed, reset all of theirs
 * ({@link readDepth}): a commit that failed on one of them (Deno KV stops
 * at the failing sum but keeps the mutations before it) may have summed
 * the others.
 *
 * @example
 * ```ts ignore
 * import { repairDepths } from "./kv_depth.ts";
 * if (await repairDepths(scope, ["celery"])) console.log("reset");
 * ```
 *
 * @param keys the database and namespace
 * @param queues the queues
 * @returns whether one was malformed
 */
export async function repairDepths(keys: DepthKeys, queues: Iterable<string>): Promise<boolean> {
  const read = await Promise.all(
    [...new Set(queues)].map(async (queue) => ({
      queue,
      entry: await keys.kv.get(keys.depthKey(queue)),
    })),
  );
  const bad = read.find(({ entry }) => depthProblem(entry.value) !== null);
  if (!bad) return false;
  for (const { queue, entry } of read) {
    const problem = depthProblem(entry.value) ??
      `summed in the commit that failed on ${keyText(bad.entry.key)}`;
    await resetDepth(keys, queue, entry, problem);
  }
  return true;
}

/**
 * Move a malformed entry (a waiting message, or an unacknowledged one) to
 * `[...ns, "parked", seq, id]` in one commit checking it, with a reason that
 * names its key and what is wrong, and log that. The value is kept as found
 * inside the parked record (listed with its reason, never requeued); one
 * too large for that is moved as it is (listed as malformed). A waiting
 * message also lowers its queue's depth.
 *
 * @example
 * ```ts ignore
 * import { parkMalformed } from "./kv_depth.ts";
 * await parkMalformed(scope, entry, "celery", "it is null, not a stored message object", true);
 * ```
 *
 * @param keys the database and namespace
 * @param entry the entry as read
 * @param queue its queue, or `""` when unknown
 * @param problem what is wrong with it
 * @param waiting whether it was a waiting message (counted in the queue's depth)
 * @returns whether this call moved it (false: it changed or went meanwhile)
 */
export async function parkMalformed(
  keys: DepthKeys,
  entry: Deno.KvEntry<unknown>,
  queue: string,
  problem: string,
  waiting: boolean,
): Promise<boolean> {
  const reason = `malformed entry ${keyText(entry.key)}: ${problem}`.slice(0, 1000);
  const parkedKey = keys.k("parked", nextSeq(), crypto.randomUUID());
  const move = (value: unknown) => {
    const op = keys.kv.atomic().check(entry);
    if (waiting) op.sum(keys.depthKey(queue), U64 - 1n);
    return op.sum(parkedCountKey(keys), 1n).delete(entry.key).set(parkedKey, value);
  };
  const record = {
    message: entry.value,
    queue,
    reason,
    taskId: null,
    taskName: null,
    parkedAt: Date.now(),
  };
  const queues = waiting ? [queue] : [];
  let res;
  try {
    res = await commitCounted(keys, queues, move(record), true);
  } catch (err) {
    if (!/too large/i.test(String(err))) throw err;
    res = await commitCounted(keys, queues, move(entry.value), true); // too large to wrap
  }
  if (res.ok) log.error("Parked {reason}", { reason });
  return res.ok;
}
