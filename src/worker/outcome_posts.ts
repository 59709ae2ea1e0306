/**
 * Posting a Web Worker's outcomes to the main thread when the structured
 * clone refuses one: the others go through, and the one refused settles as
 * a failure saying why, instead of the throw killing the Web Worker with
 * every outcome of the batch.
 *
 * @module
 */

import { EncodeError } from "../protocol/errors.ts";
import { exceptionInfo } from "../protocol/exceptions.ts";
import { resultJson } from "../protocol/result_meta.ts";
import { reportHookError } from "../client/signals.ts";
import type { Task } from "../client/task.ts";
import { splitErrbacks, takeErrbackCall } from "./errbacks.ts";
import { postSplitting } from "./post_split.ts";
import type { RunOutcome } from "./run_types.ts";

/**
 * Post a batch of outcomes with `post`. When the structured clone refuses
 * it (a `DataCloneError`: a task linked to others whose result is not
 * stored hands its return value as it is, a function in it included), each
 * outcome is posted alone and each one still refused is replaced by the
 * failure {@link unpostableOutcome} describes, posted once its in-process
 * errbacks have run (as for any failure). Any other error is thrown.
 *
 * @example
 * ```ts ignore
 * postOutcomes(outcomes, (batch) => self.postMessage({ type: "outcomes", outcomes: batch }), app.tasks);
 * ```
 *
 * @param outcomes the batch, in order
 * @param post posts some outcomes to the main thread (throws what `postMessage` throws)
 * @param tasks the task registry (which errbacks are called in-process)
 */
export function postOutcomes(
  outcomes: RunOutcome[],
  post: (batch: RunOutcome[]) => void,
  tasks: ReadonlyMap<string, Task<never, unknown>>,
): void {
  postSplitting(
    outcomes,
    post,
    (o, err) => refuse(o, err as DOMException, tasks, post),
    isCloneRefusal,
  );
}

/** Post the failure that replaces `o`, once its in-process errbacks have run. */
function refuse(
  o: RunOutcome,
  refusal: Error,
  tasks: ReadonlyMap<string, Task<never, unknown>>,
  post: (batch: RunOutcome[]) => void,
): void {
  const error = refusalError(o, refusal);
  const failed = unpostableOutcome(o, error, tasks);
  const call = takeErrbackCall(o);
  const local = call ? splitErrbacks(tasks, o.followUp?.embed.errbacks ?? null).local : [];
  if (!call || !local.length) return post([failed]);
  // Asynchronous: what throws now would be an unhandled rejection, which ends the Web Worker.
  call(local, error, failed.traceback!)
    .catch((err) => reportHookError(`the errbacks of task ${o.seq} (dispatch number)`, err))
    .then(() => post([failed]))
    .catch((err) => reportHookError(`posting the failure of task ${o.seq} (dispatch number)`, err));
}

/**
 * The failure that replaces an outcome the structured clone refused, with
 * its `EncodeError` (naming the part of the return value that cannot be
 * sent, as a stored result's encoding would, and what to return instead:
 * see {@link postOutcomes}). Its
 * follow-ups are kept, without the value: its callbacks are not sent, the
 * errbacks sent as messages are; those Celery calls in-process (taking the
 * request, the exception and the traceback) are left out, for
 * {@link postOutcomes} to call.
 *
 * @example
 * ```ts ignore
 * const error = new EncodeError("a function cannot be sent", { path: "result.f" });
 * unpostableOutcome(outcome, error, app.tasks).exc?.exc_type; // "EncodeError"
 * ```
 *
 * @param o the outcome that could not be posted
 * @param error why, as the task's failure
 * @param tasks the task registry (which errbacks are called in-process)
 * @returns a failure outcome for the same task
 */
export function unpostableOutcome(
  o: RunOutcome,
  error: EncodeError,
  tasks: ReadonlyMap<string, Task<never, unknown>>,
): RunOutcome {
  const embed = o.followUp?.embed;
  return {
    seq: o.seq,
    ok: false,
    exc: exceptionInfo(error),
    followUp: embed && {
      embed: { ...embed, errbacks: splitErrbacks(tasks, embed.errbacks).sent },
      value: null,
    },
    runtime: o.runtime,
    blocked: o.blocked,
    // Where it was built says nothing about the task: its message is the whole story.
    traceback: `${error.name}: ${error.message}`,
  };
}

function isCloneRefusal(err: unknown): err is DOMException {
  return err instanceof DOMException && err.name === "DataCloneError";
}

/** Where the value fails to encode as JSON, when it does; else the clone's refusal. */
function refusalError(o: RunOutcome, refusal: Error): EncodeError {
  if (o.followUp) {
    try {
      resultJson(o.followUp.value);
    } catch (err) {
      if (err instanceof EncodeError) return err;
    }
  }
  return new EncodeError(
    `it cannot be handed from the Web Worker to the main thread, which sends it to the task's ` +
      `linked tasks (${refusal.message}): return plain data (objects, arrays, strings, numbers, ` +
      `booleans, null)`,
    { path: "result" },
  );
}
