/**
 * The worker's side of canvases: what a finished task adds to its result
 * meta (`children`), stores (chain steps that will not run, broken
 * follow-ups) and sends (callbacks, next chain step, errbacks), and which
 * chords a finished member joins (the join itself and the sending are in
 * canvas_send.ts).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ChordPart, StoreEntry } from "../backend/port.ts";
import type { Task } from "../client/task.ts";
import { pyJsonDumps, pyJsonLoads } from "../protocol/json.ts";
import type { Embed, Message, SignatureDict } from "../protocol/message.ts";
import type { ResultMeta } from "../protocol/result_meta.ts";
import { type ResultTuple, resultTuplesText } from "../protocol/signature.ts";
import { decodeTaskBody, type TaskRequest } from "../protocol/task_request.ts";
import type { RunOutcome } from "./executor.ts";
import { chainFailures, failureEntry } from "./result_entries.ts";
import { failedMemberJoins } from "./member_joins.ts";
import { splitErrbacks } from "./errbacks.ts";
import {
  chainSteps,
  failureFollowUps,
  type FollowUps,
  type Outgoing,
  type Parent,
  successFollowUps,
} from "./follow_ups.ts";
import { oneLine } from "./log_values.ts";

const log = getLogger(["celeriac", "worker", "canvas"]);

/** A finished chord header member, to join once its meta is stored. */
export interface ChordJoin {
  /** What the backend records. */
  part: ChordPart;
  /** The chord body (frozen: it has its task id). */
  body: SignatureDict;
  /** The member, as parent of the body. */
  parent: Parent;
}

/** What a finished task stores and sends because of its canvas. */
export interface CanvasOutcome {
  /** The task's meta, with its `children` filled in. */
  meta: string | undefined;
  /** Other metas to store (chain steps that will not run, broken follow-ups). */
  stores: StoreEntry[];
  /** Messages to send. */
  publishes: Outgoing[];
  /** The chord joins to do after storing: its own, and those of chord members after it in its chain. */
  joins: ChordJoin[];
}

/** Where the `children` field sits in a meta encoded by `encodeResultMetaWithJson`. */
const NO_CHILDREN = '"children": [], "date_done": ';

/**
 * Write result tuples into a meta's `children`.
 *
 * @param meta the encoded meta (children empty)
 * @param children the tuples
 * @returns the meta with its children
 */
export function withChildren(meta: string, children: readonly ResultTuple[]): string {
  if (children.length === 0) return meta;
  // The last occurrence is the field itself: what follows it is ids and dates only.
  const at = meta.lastIndexOf(NO_CHILDREN);
  if (at < 0) return meta;
  return meta.slice(0, at) + '"children": ' + resultTuplesText(children) +
    ', "date_done": ' + meta.slice(at + NO_CHILDREN.length);
}

/**
 * Log each follow-up a task could not send and return the FAILURE to store
 * for each that has a task id.
 *
 * @example
 * ```ts ignore
 * await backend.store(brokenStores(followUps, req.id));
 * ```
 */
export function brokenStores(f: FollowUps, parentId: string): StoreEntry[] {
  return f.broken.flatMap((b) => {
    log.error("Task {id}: follow-up {task} not sent: {error}", {
      id: oneLine(parentId),
      task: oneLine(b.task),
      error: String(b.exc.exc_message[0]),
    });
    return b.taskId ? [failureEntry(b.taskId, b.exc, null)] : [];
  });
}

/**
 * The canvas consequences of one finished task (success or failure).
 *
 * @param o the outcome from the Web Worker
 * @param followUp the canvas it carries (`o.followUp`: a task without one has no canvas consequences)
 * @param req the task request
 * @param parent the task as parent of what it sends
 * @param now current time
 * @param sent children the task sent while it ran
 * @returns what to store and send
 */
export function canvasOutcome(
  o: RunOutcome,
  followUp: NonNullable<RunOutcome["followUp"]>,
  req: TaskRequest,
  parent: Parent,
  now: Date,
  sent: readonly ResultTuple[],
): CanvasOutcome {
  const { embed, value } = followUp;
  const f: FollowUps = o.ok
    ? successFollowUps(embed, value, parent, now)
    : failureFollowUps(embed, parent, now);
  const stores = brokenStores(f, req.id);
  const meta = o.meta === undefined ? undefined : withChildren(o.meta, [...sent, ...f.children]);
  const joins: ChordJoin[] = [];
  if (!o.ok && o.meta) {
    // A loop, not push(...): a chain may have more steps than a call takes arguments.
    for (const e of chainFailures(chainSteps(embed), o.meta)) stores.push(e);
    const exc = pyJsonDumps(o.exc ?? null);
    for (const j of failedMemberJoins(embed.chain ?? [], exc, parent)) joins.push(j);
  }
  const own = ownJoin(
    req,
    embed,
    o.ok ? "SUCCESS" : "FAILURE",
    () => pyJsonDumps(o.ok ? value : o.exc ?? null),
    parent,
  );
  if (own) joins.push(own);
  return { meta, stores, publishes: f.publishes, joins };
}

/** The join of a chord header member with its chord; `null` for a task that is none. */
function ownJoin(
  req: TaskRequest,
  embed: Embed,
  state: ChordJoin["part"]["state"],
  resultJson: () => string,
  parent: Parent,
): ChordJoin | null {
  if (!embed.chord || !req.group) return null;
  return {
    part: {
      groupId: req.group,
      groupIndex: req.groupIndex,
      taskId: req.id,
      state,
      resultJson: resultJson(),
    },
    body: embed.chord,
    parent,
  };
}

/**
 * The canvas consequences of a task that will not run (revoked, expired,
 * terminated), so that nothing waits for it forever: the steps after it in
 * its chain are stored as failed with its exception, and a chord header
 * member joins its chord as `REVOKED` (the chord then fails with
 * `ChordError`), as Celery's `mark_as_revoked` does.
 *
 * @example
 * ```ts ignore
 * const entry = revokedEntry(req, "revoked");
 * const { stores, joins } = notRunCanvas(req, delivery, entry, parent);
 * ```
 *
 * @param req the task
 * @param message its message (the body holds the canvas)
 * @param entry its REVOKED entry
 * @param parent the task as parent of its chord's body
 * @param maxDecompressed the most bytes a compressed body may decompress to (the worker's
 *   `maxDecompressedSize`)
 * @returns what to store and the chord joins (its own, chord members after it in its chain)
 */
export function notRunCanvas(
  req: TaskRequest,
  message: Message,
  entry: StoreEntry,
  parent: Parent,
  maxDecompressed?: number,
): { stores: StoreEntry[]; joins: ChordJoin[] } {
  let embed: Embed;
  try {
    embed = (req.body ?? decodeTaskBody(message, req.id, maxDecompressed)).embed;
  } catch {
    // A body this worker cannot read (the intake loaded its codecs): only the task itself is stored.
    return { stores: [], joins: [] };
  }
  const stores = chainFailures(chainSteps(embed), entry.meta);
  const meta = pyJsonLoads(entry.meta) as ResultMeta;
  const resultJson = pyJsonDumps(meta.result);
  const joins = failedMemberJoins(embed.chain ?? [], resultJson, parent);
  const own = ownJoin(req, embed, "REVOKED", () => resultJson, parent);
  if (own) joins.push(own);
  return { stores, joins };
}

/**
 * What a redelivered task whose result is stored (a suppressed duplicate)
 * does again before it is acknowledged, so that a late-ack task whose
 * worker was killed after storing its result loses nothing it would have
 * done next (Celery's worker runs it again, and does them then):
 * - a chord header member joins its chord again, with the state and
 *   result it stored. One that had joined is not counted twice: the Redis
 *   join keeps the entry recorded under its id (`ChordPart.again`; the
 *   stored result may not read back to the same text, `1.0` as `1`), the
 *   KV join one key per member id.
 * - a body that cannot be read sends nothing again (logged as a warning).
 * - after a SUCCESS, its `link` callbacks and next chain step are sent
 *   again, built from the stored result as after the run
 *   ({@link successFollowUps}). Those with a task id in their signature
 *   (chain steps, frozen callbacks) keep it, so a worker's duplicate
 *   screening drops one that had been sent and has finished.
 * - after a FAILURE, its errbacks that are sent (not the old-style ones
 *   this worker calls in-process: those are not called again, see
 *   {@link splitErrbacks}) are sent again as one new group with the
 *   failed task's id, as after the run ({@link failureFollowUps}); a
 *   frozen one keeps its task id.
 * - after a FAILURE or REVOKED, the steps after it in its chain are stored
 *   as failed with its stored exception again, and a chord header member
 *   among them (the chain's last step) joins its chord as failed again,
 *   as after the run or the revoke ({@link canvasOutcome},
 *   {@link notRunCanvas}): killed before that join, its chord waited for
 *   good. Celery's worker runs a failed task again, and its
 *   `mark_as_failure` does both again.
 *
 * @example
 * ```ts ignore
 * const again = duplicateCanvas(req, delivery, storedMeta, parent, app.tasks, new Date());
 * for (const p of again.publishes) settlement.publishes.push(p);
 * ```
 *
 * @param req the redelivered task
 * @param message its message (the body holds the canvas)
 * @param meta the result stored for it (SUCCESS, FAILURE or REVOKED)
 * @param parent the task as parent of what it sends
 * @param tasks the worker's tasks (an errback among them called in-process is not sent)
 * @param now current time
 * @param maxDecompressed the most bytes a compressed body may decompress to
 * @returns what to store (broken follow-ups, chain steps that will not run), send and join;
 *   empty when its body cannot be read
 */
export function duplicateCanvas(
  req: TaskRequest,
  message: Message,
  meta: ResultMeta,
  parent: Parent,
  tasks: ReadonlyMap<string, Task<never, unknown>>,
  now: Date,
  maxDecompressed?: number,
): { stores: StoreEntry[]; publishes: Outgoing[]; joins: ChordJoin[] } {
  let embed: Embed;
  try {
    embed = (req.body ?? decodeTaskBody(message, req.id, maxDecompressed)).embed;
  } catch (err) {
    log.warn(
      "Suppressed duplicate {id}: its body cannot be read ({error}); its follow-ups are not " +
        "sent again",
      { id: oneLine(req.id), error: oneLine((err as Error).message) },
    );
    return { stores: [], publishes: [], joins: [] };
  }
  const f = meta.status === "SUCCESS"
    ? successFollowUps(embed, meta.result, parent, now)
    : meta.status === "FAILURE"
    ? failureFollowUps(
      { ...embed, errbacks: splitErrbacks(tasks, embed.errbacks).sent },
      parent,
      now,
    )
    : null;
  const stores = f ? brokenStores(f, req.id) : [];
  const joins: ChordJoin[] = [];
  if (meta.status === "FAILURE" || meta.status === "REVOKED") {
    // Loops, not push(...): a chain may have more steps than a call takes arguments.
    for (const e of chainFailures(chainSteps(embed), meta)) stores.push(e);
    for (const j of failedMemberJoins(embed.chain ?? [], pyJsonDumps(meta.result), parent)) {
      j.part.again = true;
      joins.push(j);
    }
  }
  const state = meta.status as ChordPart["state"];
  const own = ownJoin(req, embed, state, () => pyJsonDumps(meta.result), parent);
  if (own) {
    own.part.again = true;
    joins.push(own);
  }
  return { stores, publishes: f?.publishes ?? [], joins };
}
