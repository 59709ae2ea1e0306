/**
 * What a task's handler is called with, from its decoded body, besides its
 * arguments (`callArgs` in client/arity.ts): the placer of a follow-up's
 * arguments ({@link argsPlacer}) and, for a bound task or an old-style
 * errback, its request ({@link requestOf}). Used by executor.ts.
 *
 * @module
 */

import { callArgs, type PlaceArgs } from "../client/arity.ts";
import type { ErrbackRequest } from "../client/task_options.ts";
import type { TaskBody } from "../protocol/message.ts";
import type { RunRequest } from "./run_types.ts";

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
