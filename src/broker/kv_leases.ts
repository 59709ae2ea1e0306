/**
 * The KV broker's lease renewal: the deadlines of many unacknowledged
 * entries moved forward in a few atomic commits, read with `getMany`, so
 * that a worker holding thousands of ETA tasks renews them all well within
 * its renewal interval.
 *
 * @module
 */

import { commitAtomic } from "./kv_store.ts";
import { unackedProblem } from "./kv_entry_check.ts";
import { KV_MAX_MESSAGE_BYTES, messageBytes, type Unacked } from "./kv_message.ts";
import type { KvScope } from "./kv_moves.ts";

/** Entries renewed per commit: each is a check and a set (Deno KV allows 100 checks per commit). */
const RENEW_BATCH = 50;
/** Bytes of messages rewritten per commit (Deno KV allows 800 KiB of mutations per commit). */
const RENEW_BATCH_BYTES = 600 * 1024;
/** Keys per `getMany` (Deno KV reads at most 10 at once). */
const READ_BATCH = 10;
/** Batches renewed at once: their reads overlap the other batches' commits. */
const RENEW_PARALLEL = 8;

type Entry = Deno.KvEntry<Unacked>;

/**
 * Renew the leases of unacknowledged deliveries: each deadline still in
 * `unacked` moves to `visibilityMs` from now. Entries are read with
 * `getMany` and renewed 50 to a commit (fewer when their messages are
 * large), each commit checking the versionstamps of what it rewrites; a
 * batch that lost a race (an entry settled or restored meanwhile) is read
 * again and retried. Up to 8 batches are under way at once; when a commit
 * throws (an outage), the others finish the batch under way, start no
 * other, and then the first error is rethrown.
 *
 * @example
 * ```ts ignore
 * const gone = await renewKvLeases(scope, deliveries.map((d) => d.deliveryTag), 60_000);
 * ```
 *
 * @param scope the broker's database and namespace
 * @param tags the delivery tags
 * @param visibilityMs the visibility timeout in milliseconds
 * @returns the tags whose entry was no longer in `unacked` (settled, or
 *   restored to its queue by a sweep after its lease ran out)
 */
export async function renewKvLeases(
  scope: KvScope,
  tags: readonly string[],
  visibilityMs: number,
): Promise<string[]> {
  const unique = [...new Set(tags)];
  const batches: string[][] = [];
  for (let i = 0; i < unique.length; i += RENEW_BATCH) {
    batches.push(unique.slice(i, i + RENEW_BATCH));
  }
  const gone: string[] = [];
  let next = 0;
  let failed = false;
  const lane = async () => {
    try {
      while (next < batches.length && !failed) {
        gone.push(...await renewBatch(scope, batches[next++], visibilityMs));
      }
    } catch (err) {
      failed = true; // the other lanes start no new batch
      throw err;
    }
  };
  // allSettled: a lane whose commit throws must not end the round while the others still commit
  // (the next round would overlap them). The tags found gone are lost with the error, but their
  // entries stay gone: the next round reports them.
  const ended = await Promise.allSettled(
    Array.from({ length: Math.min(RENEW_PARALLEL, batches.length) }, lane),
  );
  const error = ended.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (error !== undefined) throw error.reason;
  return gone;
}

/** Renew one batch until its commits go through; the tags found gone. */
async function renewBatch(scope: KvScope, tags: string[], visibilityMs: number): Promise<string[]> {
  const gone: string[] = [];
  let pending = tags;
  while (pending.length > 0) {
    const entries = await readUnacked(scope, pending);
    const present: Entry[] = [];
    entries.forEach((e, i) => {
      if (e.versionstamp === null) gone.push(pending[i]);
      else present.push(e);
    });
    const retry: string[] = [];
    for (const part of bySize(present)) {
      const deadline = Date.now() + visibilityMs;
      const op = scope.kv.atomic();
      for (const e of part) op.check(e).set(e.key, { ...e.value, deadline });
      if (!(await commitAtomic(op)).ok) retry.push(...part.map((e) => e.key.at(-1) as string));
    }
    pending = retry;
  }
  return gone;
}

/** The `unacked` entries of `tags`, in order, read `READ_BATCH` keys at a time. */
async function readUnacked(
  scope: KvScope,
  tags: readonly string[],
): Promise<Deno.KvEntryMaybe<Unacked>[]> {
  const reads: Promise<Deno.KvEntryMaybe<Unacked>[]>[] = [];
  for (let i = 0; i < tags.length; i += READ_BATCH) {
    const keys = tags.slice(i, i + READ_BATCH).map((tag) => scope.k("unacked", tag));
    reads.push(scope.kv.getMany<Unacked[]>(keys));
  }
  return (await Promise.all(reads)).flat();
}

/** Split entries into commits of at most `RENEW_BATCH_BYTES` of messages (at least one each). */
function bySize(entries: readonly Entry[]): Entry[][] {
  const parts: Entry[][] = [];
  let part: Entry[] = [];
  let bytes = 0;
  for (const e of entries) {
    // a malformed entry is renewed as it is; count it at the largest size a message can have
    const size = unackedProblem(e.value) === null
      ? messageBytes(e.value.message)
      : KV_MAX_MESSAGE_BYTES;
    if (part.length > 0 && bytes + size > RENEW_BATCH_BYTES) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(e);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}
