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
import type { Task } from "../client/task.ts";
import { splitErrbacks } from "./errbacks.ts";
import { postSplitting } from "./post_split.ts";
import type { RunOutcome } from "./run_types.ts";

/**
 * Post a batch of outcomes with `post`. When the structured clone refuses
 * it (a `DataCloneError`: a task linked to others whose result is not
 * stored hands its return value as it is, a function in it included), each
 * outcome is posted alone and each one still refused is replaced by the
 * failure {@link unpostableOutcome} describes. Any other error is thrown.
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
    (o, err) => post([unpostableOutcome(o, err as DOMException, tasks)]),
    isCloneRefusal,
  );
}

/**
 * The failure that replaces an outcome the structured clone refused: an
 * `EncodeError` naming the part of the return value that cannot be sent
 * (as a stored result's encoding would) and what to return instead. Its
 * follow-ups are kept, without the value: its callbacks are not sent, the
 * errbacks sent as messages are. Those Celery calls in-process (taking the
 * request, the exception and the traceback) are not called: the task's
 * request is no longer at hand here.
 *
 * @example
 * ```ts ignore
 * const refusal = new DOMException("()=>1 could not be cloned.", "DataCloneError");
 * unpostableOutcome(outcome, refusal, app.tasks).exc?.exc_type; // "EncodeError"
 * ```
 *
 * @param o the outcome that could not be posted
 * @param refusal what `postMessage` threw
 * @param tasks the task registry (which errbacks are called in-process)
 * @returns a failure outcome for the same task
 */
export function unpostableOutcome(
  o: RunOutcome,
  refusal: Error,
  tasks: ReadonlyMap<string, Task<never, unknown>>,
): RunOutcome {
  const error = encodeError(o, refusal);
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
function encodeError(o: RunOutcome, refusal: Error): EncodeError {
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
