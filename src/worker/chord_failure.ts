/**
 * A chord body failed by its header, as Celery's `chord_error_from_stack`:
 * its FAILURE (and those of the chain steps after it), then its errbacks,
 * split as any failed task's (errbacks.ts). Used by the chord join
 * (canvas_send.ts) and by the built-in `celery.chord_unlock` (builtins.ts).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ResultBackend, StoreEntry } from "../backend/port.ts";
import type { Task } from "../client/task.ts";
import { planCanvas } from "../protocol/canvas.ts";
import { optionText } from "../protocol/canvas_shape.ts";
import { exceptionInfo, tracebackText } from "../protocol/exceptions.ts";
import type { ResultTuple } from "../protocol/signature.ts";
import { pyJsonDumps } from "../protocol/json.ts";
import type { SignatureDict } from "../protocol/message.ts";
import type { ExceptionInfo } from "../protocol/result_meta.ts";
import { callErrbacksUntilThrown, chordBodyRequest, splitErrbacks } from "./errbacks.ts";
import {
  applyErrbacks,
  chainSteps,
  type FollowUps,
  type Outgoing,
  type Parent,
} from "./follow_ups.ts";
import { oneLine } from "./log_values.ts";
import { chainFailures, failureEntry } from "./result_entries.ts";

const log = getLogger(["celeriac", "worker", "canvas"]);

/** What failing a chord body needs from the worker. */
export interface ChordFailureIo {
  /** The result backend that stores the body's FAILURE. */
  readonly backend: ResultBackend;
  /**
   * The worker's tasks: an old-style errback (`request, exc, traceback`)
   * whose task is among them is called in-process. Default: none (every
   * errback is sent).
   */
  readonly tasks?: ReadonlyMap<string, Task<never, unknown>>;
  /** The worker's node name, in the request such an errback gets. Default: "". */
  readonly hostname?: string;
}

/**
 * The id of a chord body (frozen: its `task_id`, or its last chain step's).
 *
 * @example
 * ```ts ignore
 * chordBodyId({ task: "tasks.tsum", args: [], kwargs: {}, options: { task_id: "b" } }); // "b"
 * ```
 *
 * @param body the body's signature
 * @returns its task id
 */
export function chordBodyId(body: SignatureDict): string {
  return plannedBody(body).id;
}

/** A chord body's planned result: its id and, for a group, its members'. */
function plannedBody(body: SignatureDict): ResultTuple {
  try {
    return planCanvas(body, { args: [[]] }).result;
  } catch (err) {
    // A body that cannot be planned (a malformed signature) still has the id it was frozen with.
    const id = optionText(body.options?.task_id);
    if (id === undefined) throw err;
    return { id };
  }
}

/** The ids of a group result's members, nested ones too (none for a task's result). */
function memberIds(result: ResultTuple, out: string[] = []): string[] {
  for (const m of result.members ?? []) {
    out.push(m.id);
    memberIds(m, out);
  }
  return out;
}

/**
 * The entries that fail a chord's body with `exc` (a `ChordError`): its
 * FAILURE, and those of the chain steps after it. A group body's members
 * get the same FAILURE under their own ids, so its `GroupResult.get()`
 * (Celeriac's and Python's, which wait on the members) throws the
 * `ChordError` rather than waiting for good (Celery 5.2.6 stores it
 * under the group's id only).
 *
 * @example
 * ```ts ignore
 * await backend.store(chordFailures(body, chordError(memberId, memberExc)));
 * ```
 *
 * @param body the body's signature
 * @param exc the exception
 * @param traceback the traceback stored with it (default: the `ChordError`'s line)
 * @returns the entries
 */
export function chordFailures(
  body: SignatureDict,
  exc: ExceptionInfo,
  traceback = `celery.exceptions.ChordError: ${exc.exc_message[0]}\n`,
): StoreEntry[] {
  const planned = plannedBody(body);
  // rpc:// sends a state only to the reply queue of the client that applied the chord.
  const replyTo = optionText(body.options?.reply_to) ?? null;
  const failure = { ...failureEntry(planned.id, exc, traceback), replyTo };
  const members = memberIds(planned).map((id) => ({
    ...failureEntry(id, exc, traceback),
    replyTo,
  }));
  // A chord that is a chain step carries the rest of the chain on its body:
  // those steps will never run, so they fail too (as after a failed step).
  const rest = body.options?.chain;
  const after = chainSteps({ chain: Array.isArray(rest) ? rest : null });
  return [failure, ...members, ...chainFailures(after, failure.meta)];
}

/** The exception an old-style errback gets for `exc`: Celery passes it the `ChordError` itself. */
function raisedError(exc: ExceptionInfo): Error {
  const err = new Error(
    exc.exc_message.map((a) => typeof a === "string" ? a : pyJsonDumps(a)).join(", "),
  );
  err.name = exc.exc_type;
  return err;
}

/**
 * Fail a chord's body with `exc` (a `ChordError`): its FAILURE is stored
 * (unless `stored`: the backend's join stored it with its claim), and so
 * are those of the chain steps after it. Then its errbacks, as Celery's
 * `chord_error_from_stack`: the old-style ones this worker defines are
 * called in-process with a request made from the body, the `ChordError`
 * and no traceback; the others (one argument, bound, a canvas, or a task
 * this worker does not define, a Python one included) are returned, to be
 * sent with the body's id, the body as their parent and root. Unlike
 * Celery, the FAILURE is stored before the calls, as for any task's
 * errbacks here. As in Celery, the first old-style errback that throws
 * ends it: the body's FAILURE is stored again with that error and its
 * traceback, the errbacks after it are not called, and none is sent.
 *
 * @example
 * ```ts ignore
 * await publishAll(await failChordBody(body, exc, io, parent), io);
 * ```
 *
 * @param body the body's signature
 * @param exc the `ChordError`
 * @param io backend, tasks and node name
 * @param parent what sends the errbacks (its `id` and `rootId` are replaced by the body's)
 * @param stored whether the body's FAILURE is stored already
 * @returns the errbacks to send
 */
export async function failChordBody(
  body: SignatureDict,
  exc: ExceptionInfo,
  io: ChordFailureIo,
  parent: Parent,
  stored = false,
): Promise<Outgoing[]> {
  const bodyId = chordBodyId(body);
  if (!stored) await io.backend.store(chordFailures(body, exc));
  const links = body.options?.link_error;
  const { local, sent } = splitErrbacks(
    io.tasks ?? new Map(),
    (Array.isArray(links) ? links : links ? [links] : []) as SignatureDict[],
  );
  if (local.length) {
    const request = chordBodyRequest(body, bodyId, io.hostname ?? "");
    const thrown = await callErrbacksUntilThrown(local, request, raisedError(exc));
    if (thrown) {
      // As Celery: the errback's error becomes the body's FAILURE, and no errback is sent.
      log.error(
        "Chord body {task}[{id}]: its errback threw, so its FAILURE is now that error and its " +
          "other errbacks are not called or sent (as in Celery): {error}",
        { task: oneLine(body.task), id: oneLine(bodyId), error: tracebackText(thrown.err) },
      );
      await io.backend.store(
        chordFailures(body, exceptionInfo(thrown.err), tracebackText(thrown.err)),
      );
      return [];
    }
  }
  const errbacks: FollowUps = { publishes: [], children: [], broken: [] };
  // Celery sends them with the body as parent and, its fake request having no root, as root.
  const asParent = { ...parent, id: bodyId, rootId: bodyId };
  const now = new Date();
  applyErrbacks(sent ?? [], bodyId, asParent, now, errbacks);
  return errbacks.publishes;
}
