/**
 * Screening a redelivered message before it runs again:
 *
 * - **Duplicates.** A redelivered task whose result backend already holds
 *   a terminal state (SUCCESS, FAILURE, REVOKED) ran to the end before: it
 *   is acknowledged without running again and logged as a suppressed
 *   duplicate (Celery would run it again); first a chord header member
 *   joins its chord again with that result, and a SUCCESS sends its
 *   callbacks and next chain step again (`duplicateCanvas` in chords.ts).
 *   Only redelivered messages are looked up, so a first delivery costs
 *   nothing. A FAILURE stored when the message was parked without running
 *   ({@link REFUSALS}: unknown task, refused content, poison) is no such
 *   end: `parked --requeue` (which marks messages redelivered) puts them
 *   back to run, once the task is deployed.
 * - **Poison messages.** A message given back because the consumer holding
 *   it died ({@link DELIVERY_COUNT_HEADER}, on a redelivery only)
 *   `maxDeliveries` times is parked with a FAILURE instead of killing
 *   workers forever.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ResultBackend } from "../backend/port.ts";
import { type Delivery, DELIVERY_COUNT_HEADER } from "../broker/port.ts";
import { retryWhileDown } from "../broker/outage.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { READY_STATES, type ResultMeta } from "../protocol/result_meta.ts";
import type { TaskRequest } from "../protocol/task_request.ts";
import { rejectedTask } from "./lifecycle.ts";
import { pyException, REFUSED_MODULE } from "./result_entries.ts";
import type { Settlement } from "./settlement.ts";
import { oneLine } from "./log_values.ts";

const log = getLogger(["celeriac", "worker"]);

/**
 * Default of `WorkerOptions.maxDeliveries`: a message whose consumer died
 * holding it 5 times is parked as a poison message.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_DELIVERIES } from "./screening.ts";
 * DEFAULT_MAX_DELIVERIES; // 5
 * ```
 */
export const DEFAULT_MAX_DELIVERIES = 5;

/**
 * The FAILUREs stored for a message parked unrun that are not under
 * `REFUSED_MODULE` (where Celeriac stores its own refusals): Celery's
 * `NotRegistered` for an unknown task, as Python workers store it, and
 * kombu's `ContentDisallowed` and `DecodeError` for a body refused unread.
 * Such a FAILURE does not make a requeued message a duplicate, so a requeue
 * runs it, or parks it again while it is still refused, instead of dropping it.
 */
const REFUSALS: ReadonlySet<string> = new Set([
  "celery.exceptions.NotRegistered",
  "kombu.exceptions.ContentDisallowed",
  "kombu.exceptions.DecodeError",
]);

/** Whether a stored state says the task ran to the end (a refusal's FAILURE does not). */
function ranToTheEnd(meta: ResultMeta): boolean {
  if (!READY_STATES.has(meta.status)) return false;
  if (meta.status !== "FAILURE") return true;
  const exc = meta.result as { exc_type?: unknown; exc_module?: unknown } | null;
  // By module: a task that ran and threw its own InternalError (module `celeriac`) or a
  // third-party ProtocolError did run.
  if (exc?.exc_module === REFUSED_MODULE) return false;
  return !REFUSALS.has(`${exc?.exc_module}.${exc?.exc_type}`);
}

/**
 * The ids of redelivered deliveries whose result is already terminal, with
 * that result.
 * A backend that cannot be read now suppresses nothing (the task runs).
 *
 * @example
 * ```ts ignore
 * const done = await finishedBefore(backend, deliveries);
 * ```
 *
 * @param backend the result backend, or null
 * @param deliveries a batch
 * @returns the results stored for the task ids to suppress
 */
export async function finishedBefore(
  backend: ResultBackend | null,
  deliveries: readonly Delivery[],
): Promise<Map<string, ResultMeta>> {
  const done = new Map<string, ResultMeta>();
  if (!backend) return done;
  const ids = deliveries.filter((d) => d.redelivered && typeof d.headers.id === "string")
    .map((d) => d.headers.id as string);
  await Promise.all(ids.map(async (id) => {
    try {
      const meta = await backend.get(id);
      if (meta && ranToTheEnd(meta)) done.set(id, meta);
    } catch (err) {
      log.debug("Cannot read the state of task {id}: {error}", {
        id: oneLine(id),
        error: (err as Error).message,
      });
    }
  }));
  return done;
}

/** How many ids {@link storedIds} reads at once. */
const LOOKUP_CHUNK = 500;

/**
 * Those of `ids` whose task has any state stored, read {@link LOOKUP_CHUNK}
 * at a time. A read is retried while the backend is down (for
 * `options.limit` seconds, as stores are) and then thrown; a stored state
 * that cannot be decoded counts as stored.
 *
 * @example
 * ```ts ignore
 * const sent = await storedIds(backend, ["id-1", "id-2"], { limit: 300 });
 * ```
 *
 * @param backend the result backend, or null (nothing is found)
 * @param ids task ids
 * @param options `limit`: seconds to retry while the backend is down (default 300)
 * @returns the ids with a state stored
 */
export async function storedIds(
  backend: ResultBackend | null,
  ids: readonly string[],
  options: { limit?: number } = {},
): Promise<Set<string>> {
  const stored = new Set<string>();
  if (!backend) return stored;
  const read = async (id: string) => {
    try {
      const meta = await retryWhileDown(() => backend.get(id), {
        limit: options.limit,
        what: "read the state of a follow-up task",
      });
      if (meta !== null) stored.add(id);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      stored.add(id);
    }
  };
  for (let i = 0; i < ids.length; i += LOOKUP_CHUNK) {
    await Promise.all(ids.slice(i, i + LOOKUP_CHUNK).map(read));
  }
  return stored;
}

/**
 * How many times a delivery was given back after its consumer died: its
 * {@link DELIVERY_COUNT_HEADER}, read on a redelivery only (restored on
 * Redis or KV, redelivered by RabbitMQ). A first delivery counts 0 whatever
 * the header says: a message sent with it, or moved off a quorum queue by a
 * shovel or `celery migrate`, has not been given back here. Celery and kombu
 * do not read the header; RabbitMQ's quorum queues write 0 on a first
 * delivery themselves.
 *
 * @example
 * ```ts
 * import type { Delivery } from "@celeriac/celeriac/protocol";
 * const redelivered = (delivery: Delivery) => deliveryCount(delivery) > 0; // 0 for a first delivery
 * ```
 *
 * @param d the delivery
 * @returns the count
 */
export function deliveryCount(d: Delivery): number {
  if (!d.redelivered) return 0;
  const n = Number(d.headers[DELIVERY_COUNT_HEADER]);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/**
 * Screen a decoded delivery: a suppressed duplicate is acknowledged, a
 * poison message parked with a FAILURE (announced as `rejected`, kind
 * `poison`, which logs and counts it). Returns what it did when the task
 * must not run, else null.
 *
 * @example
 * ```ts ignore
 * if (screen(d, req, done, settlement, options.maxDeliveries)) continue;
 * ```
 *
 * @param d the delivery
 * @param req its decoded headers
 * @param done ids already finished ({@link finishedBefore})
 * @param s the settlement of this batch
 * @param maxDeliveries the poison limit; 0 never parks
 * @returns `"suppressed"` (acknowledged) or `"parked"` (announced once written) when it was settled
 *   here, else null
 */
export function screen(
  d: Delivery,
  req: TaskRequest,
  done: ReadonlyMap<string, unknown>,
  s: Settlement,
  maxDeliveries: number = DEFAULT_MAX_DELIVERIES,
): "suppressed" | "parked" | null {
  // Not asked while empty (no redelivery): see RevokedIds.has on a first lookup's cost.
  if (done.size > 0 && done.has(req.id)) {
    log.warn("Task {name}[{id}] redelivered after it finished: duplicate suppressed", {
      name: oneLine(req.task),
      id: oneLine(req.id),
    });
    s.acks.push(d);
    return "suppressed";
  }
  const count = deliveryCount(d);
  if (maxDeliveries > 0 && count >= maxDeliveries) {
    const reason = `poison message: given back ${count} times by consumers that died ` +
      `holding it (limit ${maxDeliveries}, WorkerOptions.maxDeliveries)`;
    const info = pyException("PoisonMessage", REFUSED_MODULE, [reason]);
    s.park(rejectedTask(d, req, reason, "poison", true), info);
    return "parked";
  }
  return null;
}
