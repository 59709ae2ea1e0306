/**
 * Parking on Redis: the `celeriac.parked` list of messages that cannot be
 * run (malformed, unregistered, poison), each entry a JSON object with the
 * reason and the original kombu envelope; moving a delivery there from
 * `unacked` atomically, listing the list, and putting entries back.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../protocol/envelope.ts";
import { pyJsonDumps, pyJsonLoads } from "../protocol/json.ts";
import type { ParkedMessage } from "./port.ts";
import { chunked } from "./chunks.ts";
import { claimedList } from "./redis_claims.ts";
import type { RedisScope } from "./redis_commands.ts";
import { PARKED_KEY, priorityList, queueOfList } from "./redis_keys.ts";

const log = getLogger(["celeriac", "broker", "redis"]);

/**
 * The parked-list entry of a message: the reason, where it came from, the
 * task it carried (when known), the time, and the raw envelope.
 *
 * @example
 * ```ts
 * import { parkEntry } from "./redis_parked.ts";
 * const entry = parkEntry("{}", "celery", "malformed message", null, null);
 * JSON.parse(entry).reason; // "malformed message"
 * ```
 *
 * @param raw the kombu envelope as it was in the queue
 * @param queue the queue it came from
 * @param reason why it is parked
 * @param taskId the task id, when the message was read that far
 * @param taskName the task name, likewise
 * @returns the entry (Python-compatible JSON)
 */
export function parkEntry(
  raw: string,
  queue: string,
  reason: string,
  taskId: string | null,
  taskName: string | null,
): string {
  return pyJsonDumps({
    reason,
    queue,
    task_id: taskId,
    task_name: taskName,
    parked_at: Date.now() / 1000,
    message: raw,
  });
}

/**
 * The envelope of an `unacked` entry as the take script wrote it,
 * `[envelope, "exchange", "routing_key"]`, character for character: the
 * text between the opening bracket and the two JSON strings at the end
 * (kombu's layout). The worker does not keep each message's text while it
 * runs (it would outlive young-generation collections and fill the old
 * one); parking reads it back from Redis instead.
 *
 * @example
 * ```ts
 * import { envelopeOfUnacked } from "./redis_parked.ts";
 * envelopeOfUnacked('[{"body": "e30="}, "", "celery"]'); // '{"body": "e30="}'
 * envelopeOfUnacked("not an entry"); // null
 * ```
 *
 * @param entry the value of the `unacked` hash
 * @returns the envelope text, or null when the entry is not in that layout
 */
export function envelopeOfUnacked(entry: string): string | null {
  if (entry[0] !== "[" || entry[entry.length - 1] !== "]") return null;
  let end = entry.length - 1;
  for (let field = 0; field < 2; field++) {
    // `end` is just past a JSON string (its closing quote not escaped): find its opening quote.
    if (entry[end - 1] !== '"' || escaped(entry, end - 1)) return null;
    let i = end - 2;
    while (i >= 0 && (entry[i] !== '"' || escaped(entry, i))) i--;
    if (i < 2 || entry.slice(i - 2, i) !== ", ") return null;
    end = i - 2;
  }
  return end > 1 ? entry.slice(1, end) : null;
}

/** Whether the character at `i` follows an odd number of backslashes. */
function escaped(text: string, i: number): boolean {
  let slashes = 0;
  while (text[i - 1 - slashes] === "\\") slashes++;
  return slashes % 2 === 1;
}

/** The fields {@link readParked} reads from the message when its entry lacks them. */
const DELIVERY_TAG = /"delivery_tag": "([^"\\]+)"/;
const TASK_ID = /"id": "([^"\\]+)"/;
const TASK_NAME = /"task": "([^"\\]+)"/;

/**
 * The queue of a list key the take script read (it records the key, not the
 * queue): the key prefix taken off, and a claim list's own list read.
 */
function queueOfKey(key: string, prefix: string): string {
  const list = key.startsWith(prefix) ? key.slice(prefix.length) : key;
  return queueOfList(claimedList(list) ?? list);
}

/**
 * Read a parked entry: what operators see, and the original message text.
 * An entry that is not JSON reads as "unreadable parked entry"; fields an
 * entry lacks are read from the message where they can be.
 *
 * @example
 * ```ts
 * import { parkEntry, readParked } from "./redis_parked.ts";
 * const { parked } = readParked(parkEntry("{}", "celery", "poison", "t1", "tasks.add"));
 * parked.taskName; // "tasks.add"
 * ```
 *
 * @param entry an element of the parked list
 * @param prefix the broker's key prefix (what the take script records is a key)
 * @returns the parked message and the raw envelope
 */
export function readParked(
  entry: string,
  prefix = "",
): { parked: ParkedMessage; message: string } {
  let e: Record<string, unknown> = {};
  try {
    e = pyJsonLoads(entry) as Record<string, unknown>;
  } catch {
    e = { reason: "unreadable parked entry" };
  }
  const msg = typeof e.message === "string" ? e.message : "";
  const fromMsg = (field: RegExp) => field.exec(msg)?.[1] ?? null;
  const parkedAt = typeof e.parked_at === "number" ? e.parked_at : 0;
  const parked: ParkedMessage = {
    id: `${parkedAt}:${(typeof e.task_id === "string" && e.task_id) || fromMsg(DELIVERY_TAG)}`,
    reason: String(e.reason ?? ""),
    queue: typeof e.queue === "string" ? e.queue : queueOfKey(String(e.list ?? ""), prefix),
    taskId: typeof e.task_id === "string" ? e.task_id : fromMsg(TASK_ID),
    taskName: typeof e.task_name === "string" ? e.task_name : fromMsg(TASK_NAME),
    parkedAt: new Date(parkedAt * 1000),
  };
  return { parked, message: msg };
}

/**
 * Park messages, in one script: each pushed to the parked list in the
 * order given (the last at its head) and moved out of `unacked` when still
 * there; one no longer unacknowledged (acked already, or without a tag) is
 * parked all the same. Callers keep a call to about 1,000 messages
 * (chunks.ts): the script spreads them into single commands. A call with
 * the `id` of a park that ran parks nothing again (for `recordSeconds`): a
 * retry after a lost reply passes the same id.
 *
 * @example
 * ```ts ignore
 * import { park, parkEntry } from "./redis_parked.ts";
 * await park(scope, [[delivery.deliveryTag, parkEntry(raw, "celery", "poison", null, null)]]);
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param parks each a delivery tag in `unacked` (or `""`) and its parked entry ({@link parkEntry})
 * @param id this park's id, the same when it is retried (default a new one)
 * @param recordSeconds how long the park's record lives: longer than the
 *   caller retries it (default {@link PARK_RECORD_SECONDS})
 * @returns how many were still unacknowledged
 */
export async function park(
  scope: RedisScope,
  parks: readonly (readonly [tag: string, entry: string])[],
  id: string = crypto.randomUUID(),
  recordSeconds: number = PARK_RECORD_SECONDS,
): Promise<number> {
  if (parks.length === 0) return 0;
  return await scope.client.celeriacPark(
    scope.k("unacked_index"),
    scope.k("unacked"),
    scope.k(PARKED_KEY),
    scope.k(`celeriac.park.${id}`),
    String(Math.ceil(recordSeconds)),
    ...parks.flat(),
  );
}

/**
 * Seconds a park's record (`celeriac.park.<id>`) lives by default, and
 * beyond the retry window of a caller that retries for longer: an hour.
 *
 * @example
 * ```ts
 * import { PARK_RECORD_SECONDS } from "./redis_parked.ts";
 * PARK_RECORD_SECONDS; // 3600
 * ```
 */
export const PARK_RECORD_SECONDS = 3600;

/**
 * Park a message that could not be read, logging why.
 *
 * @example
 * ```ts ignore
 * import { parkRaw } from "./redis_parked.ts";
 * await parkRaw(scope, tag, raw, "celery", "malformed message: not JSON");
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param tag the delivery tag in `unacked` (or `""`)
 * @param raw the message as it was stored
 * @param queue the queue it came from (`""` when unknown)
 * @param reason why it is parked
 */
export async function parkRaw(
  scope: RedisScope,
  tag: string,
  raw: string,
  queue: string,
  reason: string,
): Promise<void> {
  log.error("Parked a message from {queue}: {reason}", { queue, reason });
  await park(scope, [[tag, parkEntry(raw, queue, reason, null, null)]]);
}

/**
 * List parked messages, oldest first.
 *
 * @example
 * ```ts ignore
 * import { listParked } from "./redis_parked.ts";
 * for (const p of await listParked(scope, 10)) console.log(p.reason);
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param limit at most this many (the oldest)
 * @returns the parked messages
 */
export async function listParked(scope: RedisScope, limit: number): Promise<ParkedMessage[]> {
  const raw = await scope.run(() => scope.client.lrange(scope.k(PARKED_KEY), -limit, -1));
  return raw.reverse().map((entry) => readParked(entry, scope.k("")).parked);
}

/**
 * Count parked messages (the length of the parking list).
 *
 * @example
 * ```ts ignore
 * import { countParked } from "./redis_parked.ts";
 * console.log(await countParked(scope));
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @returns how many are parked
 */
export async function countParked(scope: RedisScope): Promise<number> {
  return await scope.run(() => scope.client.llen(scope.k(PARKED_KEY)));
}

/**
 * Move parked messages back to the end of their queues, marked
 * redelivered, oldest first; one whose envelope cannot be decoded stays.
 * One script per 1,000 messages (chunks.ts) moves them, each only if it is
 * still parked (another requeue may have moved it).
 *
 * @example
 * ```ts ignore
 * import { requeueParked } from "./redis_parked.ts";
 * console.log(await requeueParked(scope, 1000), "message(s) back in their queues");
 * ```
 *
 * @param scope the broker's connection and key prefix
 * @param limit at most this many (the oldest)
 * @returns how many moved
 */
export async function requeueParked(scope: RedisScope, limit: number): Promise<number> {
  const entries = await scope.run(() => scope.client.lrange(scope.k(PARKED_KEY), -limit, -1));
  const moves: { list: string; entry: string; raw: string }[] = [];
  for (const entry of entries.reverse()) {
    const { parked, message } = readParked(entry, scope.k(""));
    let env: Envelope;
    try {
      env = decodeEnvelope(message);
    } catch {
      log.warn("Parked message {id} cannot be decoded; it stays parked", { id: parked.id });
      continue;
    }
    const raw = encodeEnvelope(
      env,
      env.deliveryInfo,
      env.deliveryTag || crypto.randomUUID(),
      true,
    );
    moves.push({ list: scope.k(priorityList(parked.queue, env.properties.priority)), entry, raw });
  }
  const moved = await scope.run(() =>
    Promise.all(
      chunked(moves).map((some) =>
        scope.client.celeriacUnpark(
          some.length + 1,
          scope.k(PARKED_KEY),
          ...some.map((m) => m.list),
          ...some.flatMap((m) => [m.entry, m.raw]),
        )
      ),
    )
  );
  return moved.reduce((sum, n) => sum + n, 0);
}
