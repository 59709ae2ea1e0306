/**
 * The result-backend entries a worker stores for outcomes the task code
 * did not produce itself: refusals, revocations, expiries, STARTED, worker
 * failures, and the failures of the remaining steps of a failed chain.
 *
 * @module
 */

import type { StoreEntry } from "../backend/port.ts";
import { ContentDisallowedError, TaskNameError } from "../protocol/errors.ts";
import { exceptionInfo } from "../protocol/exceptions.ts";
import { pyJsonLoads } from "../protocol/json.ts";
import { encodeResultMeta, type ExceptionInfo, type ResultMeta } from "../protocol/result_meta.ts";
import { describeValue } from "../protocol/task_fields.ts";
import type { TaskRequest } from "../protocol/task_request.ts";

/**
 * The `exc_module` of every FAILURE a worker stores for a message it did not
 * run (a body it cannot decode, a poison message, the last resort's
 * `InternalError`), save kombu's `ContentDisallowed`: no error a task throws
 * is stored under it (theirs get `builtins`, `celeriac` or their own
 * `excModule`), so a refusal is told apart from a task that ran and threw an
 * error of the same name.
 *
 * @example
 * ```ts ignore
 * refusalInfo(new ProtocolError("bad body")).exc_module === REFUSED_MODULE; // true
 * ```
 */
export const REFUSED_MODULE = "celeriac.refused";

/**
 * A Python exception as stored in a result.
 *
 * @example
 * ```ts
 * pyException("NotRegistered", "celery.exceptions", ["tasks.nope"]).exc_type; // "NotRegistered"
 * ```
 *
 * @param type class name
 * @param module Python module
 * @param args exception arguments
 * @returns the exception info
 */
export function pyException(type: string, module: string, args: unknown[]): ExceptionInfo {
  return { exc_type: type, exc_message: args, exc_module: module };
}

/**
 * A FAILURE entry.
 *
 * @example
 * ```ts
 * failureEntry("t1", pyException("ValueError", "builtins", ["bad"]), null).status; // "FAILURE"
 * ```
 *
 * @param taskId task id
 * @param info the exception
 * @param traceback its traceback, or null
 * @returns the entry
 */
export function failureEntry(
  taskId: string,
  info: ExceptionInfo,
  traceback: string | null,
): StoreEntry {
  return {
    taskId,
    status: "FAILURE",
    meta: encodeResultMeta({
      taskId,
      status: "FAILURE",
      result: info,
      traceback,
      dateDone: new Date(),
    }),
  };
}

/**
 * The exception a worker stores for a message it did not run: Celeriac's
 * `ContentDisallowedError` as kombu's `ContentDisallowed` (what Python
 * clients know), a `TaskNameError` as Celery's `NotRegistered(123)` (an
 * object or array name described, not stored whole), anything else under
 * {@link REFUSED_MODULE} with its name.
 *
 * @example
 * ```ts ignore
 * refusalInfo(new ProtocolError("bad body")); // { exc_type: "ProtocolError", ..., exc_module: "celeriac.refused" }
 * ```
 *
 * @param err why the message was refused
 * @returns the exception info
 */
export function refusalInfo(err: unknown): ExceptionInfo {
  if (err instanceof ContentDisallowedError) return exceptionInfo(err);
  if (err instanceof TaskNameError) {
    const name = err.taskName;
    const shown = name !== null && typeof name === "object" ? describeValue(name) : name;
    return pyException("NotRegistered", "celery.exceptions", [shown]);
  }
  return { ...exceptionInfo(err), exc_module: REFUSED_MODULE };
}

/**
 * The REVOKED entry of a task revoked, terminated or expired
 * (`TaskRevokedError` with the reason, as Celery stores it).
 *
 * @example
 * ```ts
 * import { decodeTaskHeaders, encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * const req = decodeTaskHeaders(encodeTaskMessage({
 *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {},
 *   now: new Date(), origin: "gen1@host", replyTo: crypto.randomUUID(),
 * }));
 * const entry = revokedEntry(req, "expired");
 * ```
 *
 * @param req the task
 * @param reason `revoked`, `terminated` or `expired`
 * @returns the entry
 */
export function revokedEntry(
  req: TaskRequest,
  reason: "revoked" | "terminated" | "expired",
): StoreEntry {
  const meta = encodeResultMeta({
    taskId: req.id,
    status: "REVOKED",
    result: pyException("TaskRevokedError", "celery.exceptions", [reason]),
    dateDone: new Date(),
    groupId: req.group,
    parentId: req.parentId,
  });
  return { taskId: req.id, status: "REVOKED", meta, replyTo: req.replyTo };
}

/**
 * The STARTED entry of a task with `trackStarted`.
 *
 * @example
 * ```ts
 * import { decodeTaskHeaders, encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * const req = decodeTaskHeaders(encodeTaskMessage({
 *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {},
 *   now: new Date(), origin: "gen1@host", replyTo: crypto.randomUUID(),
 * }));
 * const entry = startedEntry(req, "celeriac@host");
 * ```
 *
 * @param req the task
 * @param hostname the worker's node name
 * @returns the entry
 */
export function startedEntry(req: TaskRequest, hostname: string): StoreEntry {
  return {
    taskId: req.id,
    status: "STARTED",
    meta: encodeResultMeta({
      taskId: req.id,
      status: "STARTED",
      result: { pid: Deno.pid, hostname },
      groupId: req.group,
      parentId: req.parentId,
    }),
    replyTo: req.replyTo,
  };
}

/**
 * FAILURE entries for the steps of a chain that will not run because a
 * step failed: each gets the failed step's exception and traceback.
 *
 * @example
 * ```ts ignore
 * const entries = chainFailures(chainSteps(embed), outcome.meta);
 * ```
 *
 * @param steps the remaining steps' ids and reply queues (rpc backend)
 * @param meta the failed step's result meta (JSON, or decoded)
 * @returns the entries
 */
export function chainFailures(
  steps: { taskId: string; replyTo: string | null }[],
  meta: string | Pick<ResultMeta, "result" | "traceback">,
): StoreEntry[] {
  const m = typeof meta === "string" ? pyJsonLoads(meta) as ResultMeta : meta;
  return steps.map(({ taskId, replyTo }) => ({
    taskId,
    status: "FAILURE" as const,
    meta: encodeResultMeta({
      taskId,
      status: "FAILURE",
      result: m.result,
      traceback: m.traceback,
      dateDone: new Date(),
    }),
    replyTo,
  }));
}
