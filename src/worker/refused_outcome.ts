/**
 * The outcome of a task that could not even be handed to a Web Worker (its
 * message cannot be cloned into the Web Worker, or the hand-over threw):
 * the same refusal the Web Worker reports for an undecodable body, so the
 * main thread parks the message and stores a FAILURE for its id. The
 * refusal is logged here, naming the task.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { exceptionInfo } from "../protocol/exceptions.ts";
import { encodeResultMeta } from "../protocol/result_meta.ts";
import type { RunOutcome, RunRequest } from "./executor.ts";

const log = getLogger(["celeriac", "worker", "pool"]);

/**
 * A refused outcome for `req`, with a FAILURE meta when results are stored;
 * the refusal is logged at error.
 *
 * @example
 * ```ts ignore
 * events.onOutcomes([refusedOutcome(req, new DOMException("could not be cloned", "DataCloneError"))]);
 * ```
 *
 * @param req the request that could not be handed over
 * @param err why
 * @returns the outcome
 */
export function refusedOutcome(req: RunRequest, err: unknown): RunOutcome {
  const error = err instanceof Error ? err : new Error(String(err));
  log.error("Task {name}[{id}] cannot be handed to a Web Worker: {error}", {
    name: req.task,
    id: req.id,
    error: error.message,
  });
  const exc = exceptionInfo(error);
  const reason = `cannot hand the task to a Web Worker: ${error.message}`;
  return {
    seq: req.seq,
    ok: false,
    exc,
    refused: reason,
    meta: req.storeResult
      ? encodeResultMeta({
        taskId: req.id,
        status: "FAILURE",
        result: exc,
        dateDone: new Date(),
        groupId: req.info.group,
        parentId: req.info.parentId,
      })
      : undefined,
    runtime: 0,
  };
}
