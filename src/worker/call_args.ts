/**
 * What a task's handler is called with, from its decoded body: its
 * arguments ({@link callArgs}, keyword arguments placed where the handler's
 * `params` name them) and, for a bound task or an old-style errback, its
 * request ({@link requestOf}). Used by executor.ts.
 *
 * @module
 */

import type { Task } from "../client/task.ts";
import type { ErrbackRequest } from "../client/task_options.ts";
import type { TaskBody } from "../protocol/message.ts";
import { handlerSignature, type PlaceArgs } from "./arity.ts";
import type { RunRequest } from "./run_types.ts";

/**
 * The arguments a task's handler is called with: the body's positional
 * arguments, and its keyword arguments where the handler's `params` name
 * them (a bound task reads the others from `ctx.kwargs`). Throws Python's
 * `TypeError`s (first offending keyword named) for a call that does not fit.
 *
 * @example
 * ```ts ignore
 * const args = callArgs(task, body); // params ["a", "b"], args [1], kwargs { b: 2 }: [1, 2]
 * ```
 *
 * @param task the task called
 * @param body the decoded body (its arguments)
 * @returns the handler's arguments
 * @throws {TypeError} for a keyword the handler does not take, one given twice, or keywords to a
 *   handler that declares no `params` and is not bound
 */
export function callArgs(
  task: Task<never, unknown>,
  body: Pick<TaskBody, "args" | "kwargs">,
): unknown[] {
  const kwargs = body.kwargs;
  const keys = Object.keys(kwargs);
  if (keys.length === 0) return body.args;
  const params = task.options.params;
  if (params) {
    // Python's checks and messages, in its order: the first offending keyword is named.
    const fn = task.handler ? handlerSignature(task.handler, task.options, task.name).name : "";
    const args = [...body.args];
    for (const k of keys) {
      const i = params.indexOf(k);
      if (i < 0) {
        // A bound task reads keywords it does not name from ctx.kwargs.
        if (task.options.bind) continue;
        throw new TypeError(`${fn}() got an unexpected keyword argument '${shownName(k)}'`);
      }
      if (i < body.args.length) {
        throw new TypeError(`${fn}() got multiple values for argument '${k}'`);
      }
      args[i] = kwargs[k];
    }
    return args;
  }
  if (task.options.bind) return body.args;
  throw new TypeError(
    `${task.name}() got keyword argument(s) ${namesOf(keys)}, but its handler takes positional ` +
      `arguments only: declare { params: [...] } or { bind: true } and read ctx.kwargs`,
  );
}

/** Keyword names shown in an error: a message sent with 200,000 of them gives a line, not megabytes. */
const NAMES_SHOWN = 10;
/** Characters of a keyword name shown in an error: a name of a megabyte gives a line too. */
const NAME_CHARS = 100;

function shownName(name: string): string {
  return name.length > NAME_CHARS ? `${name.slice(0, NAME_CHARS)}…` : name;
}

function namesOf(keys: readonly string[]): string {
  const shown = keys.slice(0, NAMES_SHOWN).map(shownName).join(", ");
  const more = keys.length - NAMES_SHOWN;
  return more > 0 ? `${shown} and ${more.toLocaleString("en-US")} more` : shown;
}

/**
 * Places a follow-up's or errback's arguments as {@link callArgs} places a
 * call's: the positional and keyword arguments given, with the rest of
 * `body`.
 *
 * @example
 * ```ts ignore
 * checkFollowUps(tasks, body.embed, value, argsPlacer(body));
 * ```
 *
 * @param body the running task's decoded body
 * @returns the placer
 */
export function argsPlacer(body: TaskBody): PlaceArgs {
  return (t, args, kwargs) => callArgs(t, { ...body, args, kwargs });
}

/**
 * A task's request: a bound task's context without its methods; an
 * old-style errback's first argument.
 *
 * @example
 * ```ts ignore
 * const ctx = { ...requestOf(req, body), signal, retry, replace, updateState };
 * ```
 *
 * @param req the run request
 * @param body its decoded body
 * @returns the request
 */
export function requestOf(req: RunRequest, body: TaskBody): ErrbackRequest {
  return {
    id: req.id,
    name: req.task,
    args: body.args,
    kwargs: body.kwargs,
    retries: req.info.retries,
    headers: req.headers,
    rootId: req.info.rootId,
    parentId: req.info.parentId,
    group: req.info.group,
    eta: req.info.eta,
    expires: req.info.expires,
    hostname: req.info.hostname,
    deliveryInfo: { queue: req.info.queue, redelivered: req.info.redelivered },
  };
}
