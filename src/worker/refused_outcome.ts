/**
 * The outcome of a task that could not even be handed to a Web Worker (its
 * message cannot be cloned into the Web Worker, or the hand-over threw):
 * the same refusal the Web Worker reports for an undecodable body, so the
 * main thread parks the message and stores a FAILURE for its id.
 *
 * @module
 */

import { exceptionInfo } from "../protocol/exceptions.ts";
import { encodeResultMeta } from "../protocol/result_meta.ts";
import type { RunOutcome, RunRequest } from "./executor.ts";

/**
 * A refused outcome for `req`, with a FAILURE meta when results are stored.
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
