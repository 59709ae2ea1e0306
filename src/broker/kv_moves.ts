/**
 * The KV broker's atomic moves between its keys: taking a batch of waiting
 * messages into `unacked`, and settling an unacknowledged entry by putting
 * it back in front of its queue, parking it, or restoring it after its
 * lease; and purging a queue. Each move is one commit that checks the versionstamp of what it
 * moves, so processes sharing a file never deliver a message twice and a
 * crash never loses one.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { SharedKv } from "./kv_store.ts";
import {
  commitCounted,
  type DepthKeys,
  moveWhileUnchanged,
  parkedCountKey,
  parkMalformed,
  U64,
} from "./kv_depth.ts";
import { messageProblem, unackedProblem } from "./kv_entry_check.ts";
import {
  messageBytes,
  nextSeq,
  parkedEntry,
  type StoredMessage,
  type Taken,
  type Unacked,
} from "./kv_message.ts";

const log = getLogger(["celeriac", "broker", "kv"]);

/**
 * Most messages one take commits (Deno KV allows 100 checks per atomic commit).
 *
 * @example
 * ```ts
 * import { TAKE_BATCH } from "./kv_moves.ts";
 * Math.min(500, TAKE_BATCH); // 64
 * ```
 */
export const TAKE_BATCH = 64;
/** Deno KV allows 800 KiB of mutations per atomic commit. */
const TAKE_BATCH_BYTES = 600 * 1024;
/**
 * Waits re-check at least this often. Only a fallback: changes are pushed
 * (in-process notification and a watch of the `-wal` file), but a lost file-system
 * event must not stall a consumer forever.
 *
 * @example
 * ```ts ignore
 * await shared.changed(seen, SAFETY_RECHECK_MS, signal);
 * ```
 */
export const SAFETY_RECHECK_MS = 1000;

/**
 * One KV broker's database and namespace.
 *
 * @example
 * ```ts ignore
 * const scope: KvScope = {
 *   kv: shared.kv,
 *   shared,
 *   k: (...parts) => ["celeriac", ...parts],
 *   depthKey: (queue) => ["celeriac", "depth", queue],
 * };
 * ```
 */
export interface KvScope extends DepthKeys {
  /** The shared reference to it, which notifies waiters of changes. */
  readonly shared: SharedKv;
}

/**
 * Take up to `max` waiting messages of `queues` in one commit (most urgent
 * priority step first, then the queues' order), recording each as
 * unacknowledged until `visibilityMs` from now; retried while another
 * process takes the same messages. Empty when the queues are. A malformed
 * value under a queue's key is parked on its own (with a log line naming
 * the key) and the take goes on without it.
 *
 * @example
 * ```ts ignore
 * import { takeBatch } from "./kv_moves.ts";
 * const taken = await takeBatch(scope, ["celery"], 10, 3_600_000);
 * ```
 *
 * @param scope the broker's database and namespace
 * @param queues the queues, in order of preference
 * @param max at most this many
 * @param visibilityMs the lease of each taken message
 * @returns the messages taken, with their delivery tags
 */
export async function takeBatch(
  scope: KvScope,
  queues: string[],
  max: number,
  visibilityMs: number,
): Promise<Taken[]> {
  for (;;) {
    const found: { entry: Deno.KvEntry<StoredMessage>; queue: string; order: number }[] = [];
    let malformed = 0;
    for (const [order, queue] of queues.entries()) {
      const iter = scope.kv.list<StoredMessage>({ prefix: scope.k("q", queue) }, { limit: max });
      for await (const entry of iter) {
        const problem = messageProblem(entry.value);
        if (problem === null) found.push({ entry, queue, order });
        else {
          await parkMalformed(scope, entry, queue, problem, true);
          malformed++;
        }
      }
    }
    if (found.length === 0 && malformed > 0) continue;
    if (found.length === 0) return [];
    found.sort((a, b) => a.entry.value.step - b.entry.value.step || a.order - b.order);
    const moves: Deno.KvEntry<StoredMessage>[] = [];
    const taken: Taken[] = [];
    const perQueue = new Map<string, number>();
    let bytes = 0;
    for (const { entry, queue } of found) {
      const size = messageBytes(entry.value);
      if (taken.length === max || (taken.length > 0 && bytes + size > TAKE_BATCH_BYTES)) break;
      bytes += size;
      moves.push(entry);
      perQueue.set(queue, (perQueue.get(queue) ?? 0) + 1);
      taken.push({ tag: crypto.randomUUID(), queue, message: entry.value });
    }
    // the sums first: a sum that fails (a malformed counter) stops the mutations after it
    const op = scope.kv.atomic();
    for (const [queue, n] of perQueue) op.sum(scope.depthKey(queue), U64 - BigInt(n));
    const deadline = Date.now() + visibilityMs;
    moves.forEach((entry, i) => {
      const { tag, queue, message } = taken[i];
      const unacked: Unacked = { message, queue, deadline };
      op.check(entry).delete(entry.key).set(scope.k("unacked", tag), unacked);
    });
    if ((await commitCounted(scope, perQueue.keys(), op)).ok) return taken;
  }
}

/**
 * Run `move` on the unacked entry of `tag` until it commits; false if already settled.
 *
 * @example
 * ```ts ignore
 * import { moveBack, settleUnacked } from "./kv_moves.ts";
 * await settleUnacked(scope, delivery.deliveryTag, (e) => moveBack(scope, e, true));
 * ```
 *
 * @param scope the broker's database and namespace
 * @param tag the delivery tag
 * @param move one attempt at the move; false when its commit lost a race
 * @returns whether the entry was there to move
 */
export async function settleUnacked(
  scope: KvScope,
  tag: string,
  move: (entry: Deno.KvEntry<Unacked>) => Promise<boolean>,
): Promise<boolean> {
  for (;;) {
    const entry = await scope.kv.get<Unacked>(scope.k("unacked", tag));
    if (entry.versionstamp === null) return false;
    if (await move(entry)) return true;
  }
}

/**
 * Put an unacknowledged message back in front of its queue.
 *
 * @example
 * ```ts ignore
 * import { moveBack } from "./kv_moves.ts";
 * const ok = await moveBack(scope, entry, true);
 * ```
 *
 * @param scope the broker's database and namespace
 * @param entry the unacked entry as read
 * @param redelivered mark it redelivered
 * @param restored count it as restored after its lease ran out
 * @returns false when the entry changed since it was read (nothing moved)
 */
export async function moveBack(
  scope: KvScope,
  entry: Deno.KvEntry<Unacked>,
  redelivered: boolean,
  restored = false,
): Promise<boolean> {
  const { queue } = entry.value;
  const message = {
    ...entry.value.message,
    redelivered: redelivered || entry.value.message.redelivered,
  };
  if (restored) message.restores = (message.restores ?? 0) + 1;
  return await moveWhileUnchanged(scope, entry, () =>
    commitCounted(
      scope,
      [queue],
      scope.kv.atomic()
        .check(entry)
        .sum(scope.depthKey(queue), 1n)
        .delete(entry.key)
        .set(scope.k("q", queue, message.step, -nextSeq(), crypto.randomUUID()), message),
    ));
}

/**
 * Put unacknowledged messages back in front of their queues, in the order
 * given: the first tag's message is the next taken. A few dozen move in one
 * atomic commit, the first of them in the first commit, so a consumer woken
 * by a commit never sees a later message at the head before an earlier one.
 * A tag given twice keeps its first place. Tags already settled
 * (acknowledged, restored) are skipped. Each tag is read once; only the
 * entries of a commit that lost a race are read again.
 *
 * @example
 * ```ts ignore
 * import { moveBackMany } from "./kv_moves.ts";
 * const moved = await moveBackMany(scope, deliveries.map((d) => d.deliveryTag), true);
 * ```
 *
 * @param scope the broker's database and namespace
 * @param tags the delivery tags, first to go in front first
 * @param redelivered mark them redelivered
 * @param counted count them as restored (their consumer died holding them)
 * @returns how many were moved
 */
export async function moveBackMany(
  scope: KvScope,
  tags: readonly string[],
  redelivered: boolean,
  counted = false,
): Promise<number> {
  const order = [...new Set(tags)]; // a Set keeps each tag's first place
  // The first tag gets the highest sequence: queue keys hold -seq, so it sorts first.
  const seqs = new Map<string, bigint>();
  for (const tag of order.toReversed()) seqs.set(tag, nextSeq());
  const read = async (keys: readonly Deno.KvKey[]) => {
    const entries = await Promise.all(keys.map((key) => scope.kv.get<Unacked>(key)));
    const out: Deno.KvEntry<Unacked>[] = [];
    for (const e of entries) {
      if (e.versionstamp === null) continue;
      if (await parkedIfMalformed(scope, e)) continue;
      out.push(e);
    }
    return out;
  };
  let moved = 0;
  let next = 0; // order[next] is the first tag not read yet
  let ready: Deno.KvEntry<Unacked>[] = []; // read and still to move, in order
  while (next < order.length || ready.length > 0) {
    const more = order.slice(next, next + TAKE_BATCH - ready.length);
    next += more.length;
    ready = [...ready, ...await read(more.map((tag) => scope.k("unacked", tag)))];
    if (ready.length === 0) continue;
    const sets: [Deno.KvEntry<Unacked>, Deno.KvKey, StoredMessage][] = [];
    const perQueue = new Map<string, bigint>();
    let n = 0;
    let bytes = 0;
    for (const entry of ready) {
      const size = messageBytes(entry.value.message);
      if (n > 0 && bytes + size > TAKE_BATCH_BYTES) break;
      bytes += size;
      const { queue } = entry.value;
      const tag = entry.key.at(-1) as string;
      const message = {
        ...entry.value.message,
        redelivered: redelivered || entry.value.message.redelivered,
      };
      if (counted) message.restores = (message.restores ?? 0) + 1;
      const key = scope.k("q", queue, message.step, -seqs.get(tag)!, crypto.randomUUID());
      sets.push([entry, key, message]);
      perQueue.set(queue, (perQueue.get(queue) ?? 0n) + 1n);
      n++;
    }
    // the sums first: a sum that fails (a malformed counter) stops the mutations after it
    const op = scope.kv.atomic();
    for (const [queue, count] of perQueue) op.sum(scope.depthKey(queue), count);
    for (const [entry, key, message] of sets) op.check(entry).delete(entry.key).set(key, message);
    const attempt = ready.slice(0, n);
    ready = ready.slice(n);
    if ((await commitCounted(scope, perQueue.keys(), op)).ok) moved += n;
    else ready = [...await read(attempt.map((e) => e.key)), ...ready]; // one changed: read again
  }
  return moved;
}

/**
 * Move an unacknowledged message to the parked list.
 *
 * @example
 * ```ts ignore
 * import { parkUnacked } from "./kv_moves.ts";
 * const ok = await parkUnacked(scope, entry, "poison", taskId, "tasks.add");
 * ```
 *
 * @param scope the broker's database and namespace
 * @param entry the unacked entry as read
 * @param reason why it is parked
 * @param taskId its task id, when known
 * @param taskName its task name, when known
 * @returns false when the entry changed since it was read (nothing moved)
 */
export async function parkUnacked(
  scope: KvScope,
  entry: Deno.KvEntry<Unacked>,
  reason: string,
  taskId: string | null,
  taskName: string | null,
): Promise<boolean> {
  const parked = parkedEntry(entry.value.message, entry.value.queue, reason, taskId, taskName);
  const res = await commitCounted(
    scope,
    [],
    scope.kv.atomic()
      .check(entry)
      .sum(parkedCountKey(scope), 1n)
      .delete(entry.key)
      .set(scope.k("parked", nextSeq(), crypto.randomUUID()), parked),
    true,
  );
  return res.ok;
}

/**
 * Park an unacknowledged entry when it is malformed (kv_entry_check.ts).
 *
 * @returns whether it was malformed (parked now, or moved meanwhile)
 */
async function parkedIfMalformed(scope: KvScope, entry: Deno.KvEntry<unknown>): Promise<boolean> {
  const problem = unackedProblem(entry.value);
  if (problem === null) return false;
  const queue = (entry.value as { queue?: unknown } | null)?.queue;
  await parkMalformed(scope, entry, typeof queue === "string" ? queue : "", problem, false);
  return true;
}

/**
 * The restore sweep: put every unacknowledged message whose lease ran out
 * back in front of its queue, marked redelivered, and wake the waiters. A
 * malformed entry is parked (with a log line naming its key), and the
 * sweep goes on.
 *
 * @example
 * ```ts ignore
 * import { restoreExpired } from "./kv_moves.ts";
 * await restoreExpired(scope);
 * ```
 *
 * @param scope the broker's database and namespace
 */
export async function restoreExpired(scope: KvScope): Promise<void> {
  const now = Date.now();
  let restored = 0;
  for await (const entry of scope.kv.list<Unacked>({ prefix: scope.k("unacked") })) {
    if (await parkedIfMalformed(scope, entry)) continue;
    if (entry.value.deadline <= now && await moveBack(scope, entry, true, true)) restored++;
  }
  if (restored > 0) {
    log.info("Restored {count} unacknowledged message(s) after the visibility timeout", {
      count: restored,
    });
    scope.shared.notify();
  }
}

/** Messages deleted per commit by {@link purgeQueue}. */
const PURGE_BATCH = 100;

/**
 * Delete every waiting message of a queue, all priorities, a batch per
 * commit (each checks the versionstamps of what it deletes and lowers the
 * depth counter by as many).
 *
 * @example
 * ```ts ignore
 * const deleted = await purgeQueue(scope, "celery");
 * ```
 *
 * @param scope the broker's database and namespace
 * @param queue the queue
 * @returns how many messages were deleted
 */
export async function purgeQueue(scope: KvScope, queue: string): Promise<number> {
  let count = 0;
  for (;;) {
    const batch = await Array.fromAsync(
      scope.kv.list<StoredMessage>({ prefix: scope.k("q", queue) }, { limit: PURGE_BATCH }),
    );
    if (batch.length === 0) return count;
    const op = scope.kv.atomic().sum(scope.depthKey(queue), U64 - BigInt(batch.length));
    for (const entry of batch) op.check(entry).delete(entry.key);
    if ((await commitCounted(scope, [queue], op)).ok) count += batch.length;
  }
}
