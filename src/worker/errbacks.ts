/**
 * Old-style errbacks, called where the task failed, as Celery 5.2's
 * backend does (`_call_task_errbacks`): a `link_error` signature whose task
 * this worker defines, unbound, with two or more parameters (or a rest
 * parameter) is called in-process as `(request, exc, traceback, ...args)`
 * once the FAILURE is stored; no message is sent for it. Every other
 * errback (one parameter, bound, a canvas, or a task this worker does not
 * define) is left to be sent as a task with the failed task's id. A chord
 * body failed by its header gets the same split, its in-process errbacks
 * called with a request made from the body's signature
 * ({@link chordBodyRequest}) and no traceback until one throws, as Celery's
 * `chord_error_from_stack` does.
 *
 * @module
 */

import type { Task } from "../client/task.ts";
import { reportHookError } from "../client/signals.ts";
import type { ErrbackRequest } from "../client/task_options.ts";
import type { SignatureDict } from "../protocol/message.ts";
import { callArgs, fittedArgs, handlerSignature, type PlaceArgs } from "../client/arity.ts";

/** An errback to call in-process, with its task. */
export interface LocalErrback {
  /** The `link_error` signature. */
  sig: SignatureDict;
  /** Its task, defined in this worker's app. */
  task: Task<never, unknown>;
}

/**
 * Split a failed task's errbacks into those called in-process and those sent.
 *
 * @example
 * ```ts ignore
 * const { local, sent } = splitErrbacks(app.tasks, embed.errbacks);
 * ```
 *
 * @param tasks the worker's task registry
 * @param errbacks the failed task's `link_error` signatures
 * @returns the in-process ones, and the rest (`null` when none), in order
 */
export function splitErrbacks(
  tasks: ReadonlyMap<string, Task<never, unknown>>,
  errbacks: readonly SignatureDict[] | null,
): { local: LocalErrback[]; sent: SignatureDict[] | null } {
  const local: LocalErrback[] = [];
  const sent: SignatureDict[] = [];
  for (const sig of errbacks ?? []) {
    const task = sig.subtask_type ? undefined : tasks.get(sig.task);
    if (task && takesRequest(task)) local.push({ sig, task });
    else sent.push(sig);
  }
  return { local, sent: sent.length ? sent : null };
}

/** Celery's test: an unbound task whose handler takes more than one positional argument. */
function takesRequest(task: Task<never, unknown>): boolean {
  if (!task.handler || task.options.bind) return false;
  const sig = handlerSignature(task.handler, task.options, task.name);
  // An unreadable parameter list (no names) is not taken for a rest parameter.
  return sig.names.length > 1 || (sig.max === Infinity && sig.names.length > 0);
}

/** Keyword arguments placed where the handler's `params` name them. */
const byParams: PlaceArgs = (task, args, kwargs) => callArgs(task, { args, kwargs });

/**
 * Call the in-process errbacks one after another, as Celery's `sig(request,
 * exc, traceback)`: the three come first unless the signature is immutable,
 * then its own arguments; its keyword arguments go where `place` puts them.
 * A call that does not fit the handler throws Python's `TypeError` (as
 * `add(request, exc, traceback)` does in Celery); an errback that throws is
 * reported and the others still run; nothing is stored for them (a direct
 * call, as in Celery, has no result).
 *
 * @example
 * ```ts ignore
 * await callErrbacks(local, request, err, traceback, (task, args, kwargs) => args);
 * ```
 *
 * @param local the errbacks
 * @param request the failed task's request
 * @param exc what it threw
 * @param traceback its traceback text
 * @param place builds a handler's arguments from positional and keyword ones
 *   (default: keyword arguments where the handler's `params` name them)
 */
export async function callErrbacks(
  local: readonly LocalErrback[],
  request: ErrbackRequest,
  exc: unknown,
  traceback: string | null,
  place: PlaceArgs = byParams,
): Promise<void> {
  for (const errback of local) {
    try {
      await callErrback(errback, request, exc, traceback, place);
    } catch (err) {
      reportHookError(`errback ${errback.sig.task} of ${request.name}[${request.id}]`, err);
    }
  }
}

/** Call one in-process errback ({@link callErrbacks}); what it throws is thrown. */
async function callErrback(
  { sig, task }: LocalErrback,
  request: ErrbackRequest,
  exc: unknown,
  traceback: string | null,
  place: PlaceArgs,
): Promise<void> {
  const args = sig.immutable ? sig.args : [request, exc, traceback, ...sig.args];
  // Python's TypeError for a call that does not fit (tasks.add(a, b) as an errback), as in Celery.
  const placed = fittedArgs(task, args, sig.kwargs, place);
  const handler = task.handler as (...a: unknown[]) => unknown;
  await handler(...placed);
}

/**
 * Call the in-process errbacks of a chord body failed by its header one
 * after another as {@link callErrbacks} does, but stop at the first that
 * throws and return what it threw, as Celery's `chord_error_from_stack`
 * (whose caller then stores that error as the body's FAILURE and sends no
 * errback).
 *
 * @example
 * ```ts ignore
 * const thrown = await callErrbacksUntilThrown(local, request, chordFailure);
 * if (thrown) await backend.store(bodyFailure(thrown.err));
 * ```
 *
 * @param local the errbacks
 * @param request the body's request ({@link chordBodyRequest})
 * @param exc the `ChordError`
 * @returns `{ err }` with what the first errback that threw threw, `null` when none did
 */
export async function callErrbacksUntilThrown(
  local: readonly LocalErrback[],
  request: ErrbackRequest,
  exc: unknown,
): Promise<{ err: unknown } | null> {
  for (const errback of local) {
    try {
      await callErrback(errback, request, exc, null, byParams);
    } catch (err) {
      return { err };
    }
  }
  return null;
}

/**
 * The request an old-style errback of a chord body failed by its header
 * gets, made from the body's signature as Celery's `chord_error_from_stack`
 * makes its fake request: the body's id, task name and arguments (without
 * the header's results, which it never got), and only its queue from its
 * options: no root, parent or group ids (Celery's request takes none from
 * the options, whatever a frozen body carries), no retries, headers, ETA,
 * expiry or delivery.
 *
 * @example
 * ```ts ignore
 * const request = chordBodyRequest(body, bodyId, "celeriac@host");
 * await callErrbacks(local, request, chordFailure, null);
 * ```
 *
 * @param body the chord body's signature
 * @param id its task id
 * @param hostname the node name of the worker that failed it
 * @returns the request
 */
export function chordBodyRequest(
  body: SignatureDict,
  id: string,
  hostname: string,
): ErrbackRequest {
  const o = body.options ?? {};
  const text = (v: unknown) => typeof v === "string" ? v : null;
  return {
    id,
    name: body.task,
    args: body.args ?? [],
    kwargs: body.kwargs ?? {},
    retries: 0,
    headers: {},
    rootId: null,
    parentId: null,
    group: null,
    eta: null,
    expires: null,
    hostname,
    deliveryInfo: { queue: text(o.queue) ?? "", redelivered: false },
  };
}

/**
 * Calls the in-process errbacks `local` of a task with `exc` and
 * `traceback`, with the task's request at hand ({@link callErrbacks}).
 */
export type ErrbackCall = (
  local: readonly LocalErrback[],
  exc: Error,
  traceback: string,
) => Promise<void>;

/** The errback calls kept for outcomes that may yet become failures, by outcome. */
const kept = new WeakMap<object, ErrbackCall>();

/**
 * Keep how to call the in-process errbacks of a task that succeeded, for
 * when its outcome turns into a failure after the task's request is gone
 * (the structured clone refuses its value: `outcome_posts.ts`). Dropped
 * with the outcome.
 *
 * @example
 * ```ts ignore
 * keepErrbackCall(outcome, (local, exc, tb) => callErrbacks(local, request, exc, tb, place));
 * takeErrbackCall(outcome)?.(local, err, traceback);
 * ```
 *
 * @param outcome the outcome
 * @param call calls its errbacks
 */
export function keepErrbackCall(outcome: object, call: ErrbackCall): void {
  kept.set(outcome, call);
}

/**
 * The errback call kept for an outcome ({@link keepErrbackCall}), taken
 * out; undefined when none was kept.
 *
 * @example
 * ```ts ignore
 * const call = takeErrbackCall(outcome);
 * ```
 *
 * @param outcome the outcome
 * @returns the call
 */
export function takeErrbackCall(outcome: object): ErrbackCall | undefined {
  const call = kept.get(outcome);
  kept.delete(outcome);
  return call;
}
