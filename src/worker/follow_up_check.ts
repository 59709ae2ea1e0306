/**
 * The argument check a Celery worker makes on what a succeeded task sends
 * next: its `link` callbacks and the next step of its chain go out with
 * `apply_async`, which checks the call against the task's own definition
 * when the worker defines it (Celery's `typing`). A call that does not fit
 * raises `TypeError` before the task's result is stored, so the task itself
 * fails with it and that follow-up is not sent. The error is raised outside
 * the task's body, so `autoretryFor` does not re-run it (Celery logs
 * "Exception raised outside body").
 *
 * One difference remains: every follow-up is checked before any is sent, so
 * a misfit sends none of them, where Celery has already sent the callbacks
 * listed before it.
 *
 * @module
 */

import type { Task } from "../client/task.ts";
import type { Embed, SignatureDict } from "../protocol/message.ts";
import { fittedArgs, type PlaceArgs } from "../client/arity.ts";
import { BUILTIN_TASKS } from "./builtins.ts";

/**
 * Throw Python's `TypeError` when a plain task among `embed`'s callbacks or
 * its next chain step, defined in `tasks`, would be called with arguments
 * its handler does not take (the result first unless it is immutable).
 * Canvases (groups, chains, chords), tasks this worker does not define and
 * Celery's built-in tasks are not checked.
 *
 * @example
 * ```ts ignore
 * checkFollowUps(app.tasks, body.embed, value, place); // throws for add.si() as a callback
 * ```
 *
 * @param tasks the worker's task registry
 * @param embed the succeeded task's embed
 * @param value its return value
 * @param place builds a handler's arguments from positional and keyword ones
 * @throws {TypeError} with Python's message
 */
export function checkFollowUps(
  tasks: ReadonlyMap<string, Task<never, unknown>>,
  embed: Embed,
  value: unknown,
  place: PlaceArgs,
): void {
  const next = embed.chain?.length ? [embed.chain[embed.chain.length - 1]] : [];
  for (const sig of [...embed.callbacks ?? [], ...next]) check(tasks, sig, value, place);
}

function check(
  tasks: ReadonlyMap<string, Task<never, unknown>>,
  sig: SignatureDict,
  value: unknown,
  place: PlaceArgs,
): void {
  if (sig.subtask_type || BUILTIN_TASKS.includes(sig.task)) return;
  const task = tasks.get(sig.task);
  if (!task?.handler) return;
  const args = sig.immutable ? sig.args : [value, ...sig.args];
  fittedArgs(task, args, sig.kwargs ?? {}, place);
}
