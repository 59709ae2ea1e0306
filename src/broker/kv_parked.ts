/**
 * Parking in Deno KV: rejected deliveries go under
 * `[...ns, "parked", seq, id]` with their reason (moved from `unacked`
 * atomically, or from their own content when no longer unacknowledged);
 * operators list them oldest first and move them back to their queues.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { encodeMessage, headerText, nextSeq, type Parked, parkedEntry } from "./kv_message.ts";
import { type KvScope, parkUnacked, settleUnacked } from "./kv_moves.ts";
import { commitAtomic } from "./kv_store.ts";
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
    await commitAtomic(
      scope.kv.atomic().set(
        scope.k("parked", nextSeq(), crypto.randomUUID()),
        parkedEntry(message, d.queue, r.reason, taskId, taskName),
      ),
    );
  }
  log.debug("Parked task {taskId} from {queue}: {reason}", {
    taskId,
    queue: d.queue,
    reason: r.reason,
  });
}

/**
 * List parked messages, oldest first.
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
 * Count parked messages (reads every key of the parking store, no values).
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
  let n = 0;
  for await (const _ of scope.kv.list({ prefix: scope.k("parked") })) n++;
  return n;
}

/**
 * Move parked messages (oldest first, among those parked when it began)
 * to the back of their queues, marked redelivered, and wake the waiters.
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
  while (moved < limit) {
    const batch = await Array.fromAsync(
      scope.kv.list<Parked>({ prefix, end }, {
        limit: Math.min(limit - moved, REQUEUE_BATCH),
      }),
    );
    if (batch.length === 0) break;
    for (const entry of batch) {
      const { queue } = entry.value;
      const message = { ...entry.value.message, redelivered: true };
      const res = await commitAtomic(
        scope.kv.atomic()
          .check(entry)
          .delete(entry.key)
          .set(scope.k("q", queue, message.step, nextSeq(), crypto.randomUUID()), message)
          .sum(scope.depthKey(queue), 1n),
      );
      if (res.ok) moved++;
    }
  }
  if (moved > 0) scope.shared.notify();
  return moved;
}
