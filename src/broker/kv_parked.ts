/**
 * Parking in Deno KV: rejected deliveries go under
 * `[...ns, "parked", seq, id]` with their reason (moved from `unacked`
 * atomically, or from their own content when no longer unacknowledged);
 * operators list them oldest first and move them back to their queues.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  encodeMessage,
  headerText,
  nextSeq,
  type Parked,
  parkedEntry,
  type StoredMessage,
} from "./kv_message.ts";
import { type KvScope, parkUnacked, settleUnacked } from "./kv_moves.ts";
import { commitCounted, moveWhileUnchanged, parkedCountKey, recount, U64 } from "./kv_depth.ts";
import { depthProblem, keyText, messageProblem, parkedProblem } from "./kv_entry_check.ts";
import type { ParkedMessage, Rejection } from "./port.ts";

const log = getLogger(["celeriac", "broker", "kv"]);

/** Parked entries moved back per listing. */
const REQUEUE_BATCH = 100;

/**
 * Park one rejected delivery with its reason. A delivery no longer
 * unacknowledged (acknowledged early) is parked from its own content.
 *
 * @example
 * ```ts ignore
 * import { parkRejection } from "./kv_parked.ts";
 * await parkRejection(scope, { delivery, reason: "unregistered task" });
 * ```
 *
 * @param scope the broker's database and namespace
 * @param r the delivery and why it is parked
 */
export async function parkRejection(scope: KvScope, r: Rejection): Promise<void> {
  const d = r.delivery;
  const taskId = r.taskId ?? headerText(d.headers.id);
  const taskName = r.taskName ?? headerText(d.headers.task);
  const moved = await settleUnacked(
    scope,
    d.deliveryTag,
    (e) => parkUnacked(scope, e, r.reason, taskId, taskName),
  );
  if (!moved) {
    const message = {
      ...encodeMessage(d, d.exchange, d.routingKey),
      redelivered: d.redelivered,
    };
    const parked = parkedEntry(message, d.queue, r.reason, taskId, taskName);
    const key = scope.k("parked", nextSeq(), crypto.randomUUID());
    // not ok only after the parked counter was reset: park it again
    while (!(await commitCounted(scope, [], park(scope, key, parked), true)).ok);
  }
  log.debug("Parked task {taskId} from {queue}: {reason}", {
    taskId,
    queue: d.queue,
    reason: r.reason,
  });
}

/** Set a parked entry, counted (the counter's sum first: Deno KV 2.9 keeps mutations before a failing sum). */
function park(scope: KvScope, key: Deno.KvKey, parked: Parked): Deno.AtomicOperation {
  return scope.kv.atomic().sum(parkedCountKey(scope), 1n).set(key, parked);
}

/**
 * When a parked entry was parked, from the sequence in its key (microseconds
 * since the epoch): for an entry whose own time is unreadable.
 */
function keyTime(key: Deno.KvKey): Date {
  const seq = key[key.length - 2];
  return new Date(typeof seq === "bigint" ? Number(seq / 1000n) : 0);
}

/**
 * List parked messages, oldest first. A malformed parked entry is listed
 * with a reason that names its key and what is wrong (and logged).
 *
 * @example
 * ```ts ignore
 * import { listParked } from "./kv_parked.ts";
 * for (const p of await listParked(scope, 10)) console.log(p.reason);
 * ```
 *
 * @param scope the broker's database and namespace
 * @param limit at most this many (Infinity for all)
 * @returns the parked messages
 */
export async function listParked(scope: KvScope, limit: number): Promise<ParkedMessage[]> {
  const out: ParkedMessage[] = [];
  const iter = scope.kv.list<Parked>({ prefix: scope.k("parked") }, {
    limit: limit === Infinity ? undefined : limit,
  });
  for await (const { key, value } of iter) {
    const problem = parkedProblem(value);
    if (problem !== null) {
      const reason = `malformed parked entry ${keyText(key)}: ${problem}`;
      log.warn("Listed {reason}", { reason });
      const queue = (value as { queue?: unknown } | null)?.queue;
      out.push({
        id: String(key[key.length - 1]),
        reason,
        queue: typeof queue === "string" ? queue : "",
        taskId: null,
        taskName: null,
        parkedAt: keyTime(key),
      });
      continue;
    }
    out.push({
      id: String(key[key.length - 1]),
      reason: value.reason,
      queue: value.queue,
      taskId: value.taskId,
      taskName: value.taskName,
      parkedAt: new Date(value.parkedAt),
    });
  }
  return out;
}

/**
 * Count parked messages: one read of the counter kept with every park and
 * requeue. A store parked in before the counter existed (no counter, or one
 * taken below zero by requeues of such messages) is counted once by listing
 * its parked messages, which sets the counter ({@link recount}; one that is
 * malformed, with a warning).
 *
 * @example
 * ```ts ignore
 * import { countParked } from "./kv_parked.ts";
 * console.log(await countParked(scope));
 * ```
 *
 * @param scope the store and key namespace
 * @returns how many are parked
 */
export async function countParked(scope: KvScope): Promise<number> {
  const counter = await scope.kv.get(parkedCountKey(scope));
  const problem = depthProblem(counter.value);
  if (counter.value !== null && problem === null) {
    return Number((counter.value as Deno.KvU64).value);
  }
  return await recount(scope, counter, scope.k("parked"), "parked counter", problem);
}

/**
 * Move parked messages (oldest first, among those parked when it began)
 * to the back of their queues, marked redelivered, and wake the waiters.
 * A parked entry that is malformed, or holds a malformed message (parked
 * as found, kv_depth.ts), stays parked, with a log line naming its key.
 *
 * @example
 * ```ts ignore
 * import { requeueParked } from "./kv_parked.ts";
 * console.log(await requeueParked(scope, 1000), "moved");
 * ```
 *
 * @param scope the broker's database and namespace
 * @param limit at most this many (Infinity for all)
 * @returns how many moved
 */
export async function requeueParked(scope: KvScope, limit: number): Promise<number> {
  const prefix = scope.k("parked");
  const [newest] = await Array.fromAsync(
    scope.kv.list<Parked>({ prefix }, { reverse: true, limit: 1 }),
  );
  if (!newest) return 0;
  // up to the newest parked now: one parked again meanwhile (a worker
  // refusing it once more) waits for the next requeue; a key sorts before
  // its extensions, which sort before every later key
  const end = [...newest.key, 0];
  let moved = 0;
  let cursor: string | undefined;
  let more = true;
  while (more && moved < limit) {
    const want = Math.min(limit - moved, REQUEUE_BATCH);
    const iter = scope.kv.list<Parked>({ prefix, end }, { limit: want, cursor });
    const batch = await Array.fromAsync(iter);
    // a batch short of `want` was the last (the cursor of a finished listing starts over)
    more = batch.length === want;
    cursor = iter.cursor;
    for (const entry of batch) {
      const problem = parkedProblem(entry.value) ?? messageProblem(entry.value.message);
      if (problem !== null) {
        log.warn("Left parked entry {key} parked, it cannot be requeued: {problem}", {
          key: keyText(entry.key),
          problem,
        });
        continue;
      }
      const { queue } = entry.value;
      const message: StoredMessage = { ...entry.value.message, redelivered: true };
      const done = await moveWhileUnchanged(scope, entry, () =>
        commitCounted(
          scope,
          [queue],
          scope.kv.atomic()
            .check(entry)
            .sum(scope.depthKey(queue), 1n)
            .sum(parkedCountKey(scope), U64 - 1n)
            .delete(entry.key)
            .set(scope.k("q", queue, message.step, nextSeq(), crypto.randomUUID()), message),
          true,
        ));
      if (done) moved++;
    }
  }
  if (moved > 0) scope.shared.notify();
  return moved;
}
