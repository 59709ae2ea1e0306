/**
 * Runs one task: decode the body, call the handler with the right
 * arguments, and encode the outcome (the result meta to store, and what the
 * main thread needs for follow-up tasks). Used inside Web Workers and by the
 * inline pool, through batch_runner.ts (many runs, outcomes in batches).
 *
 * @module
 */

import { currentTask } from "../client/current.ts";
import { Replaced } from "../client/replaced.ts";
import { Retry, type RetryOptions } from "../client/retry.ts";
import type { Task } from "../client/task.ts";
import type { TaskContext } from "../client/task_options.ts";
import { codecsFor, loadCodecs } from "../protocol/codecs.ts";
import { exceptionInfo, tracebackText } from "../protocol/exceptions.ts";
import { pyJsonDumps } from "../protocol/json.ts";
import type { Embed, TaskBody } from "../protocol/message.ts";
import {
  encodeResultMetaWithJson,
  type ExceptionInfo,
  resultJson,
  type ResultMetaInput,
} from "../protocol/result_meta.ts";
import { resultRepr } from "../protocol/repr.ts";
import { decodeTaskBody } from "../protocol/task_request.ts";
import { checkCall, handlerSignature } from "./arity.ts";
import { stateUpdater } from "./task_state.ts";
import { runHooks } from "./task_hooks.ts";
import { reportedError } from "./reported_error.ts";
import { autoretryOptions, type PlannedRetry, planRetry } from "./retry_policy.ts";
import { taskReplacer } from "./replace.ts";
import { refusalInfo } from "./result_entries.ts";
import type { RunOutcome, RunRequest, RunServices } from "./run_types.ts";

export type { RunOutcome, RunRequest, RunServices } from "./run_types.ts";

function callArgs(task: Task<never, unknown>, body: TaskBody): unknown[] {
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

function needsFollowUp(embed: Embed): boolean {
  return embed.callbacks !== null || embed.chain !== null || embed.errbacks !== null ||
    embed.chord !== null;
}

/**
 * The FAILURE outcome of a request that failed before its task code ran (a
 * body that cannot be decoded, or a run whose outcome could not be built):
 * its meta holds the error, or is absent when even that cannot be encoded.
 *
 * @example
 * ```ts ignore
 * runTask(tasks, req, signal).catch((err) => failedBeforeRun(req, err));
 * ```
 *
 * @param req the request
 * @param err the error
 * @param exc the exception stored; default `err`'s
 * @returns the outcome
 */
export function failedBeforeRun(
  req: RunRequest,
  err: unknown,
  exc: ExceptionInfo = exceptionInfo(err),
): RunOutcome {
  let meta: string | undefined;
  try {
    meta = encodeResultMetaWithJson({
      taskId: req.id,
      groupId: req.info.group,
      parentId: req.info.parentId,
      status: "FAILURE",
      result: null,
      dateDone: new Date(),
    }, pyJsonDumps(exc));
  } catch {
    meta = undefined;
  }
  return { seq: req.seq, ok: false, exc, meta, runtime: 0 };
}

/**
 * Run one task request against a registry of tasks.
 *
 * @example
 * ```ts ignore
 * const outcome = await runTask(app.tasks, request, AbortSignal.timeout(60_000));
 * ```
 *
 * @param tasks the registry
 * @param req the request
 * @param signal aborted when the worker wants the task to stop
 * @param services what the task may reach (state updates); none by default
 * @returns the outcome
 */
export async function runTask(
  tasks: ReadonlyMap<string, Task<never, unknown>>,
  req: RunRequest,
  signal: AbortSignal,
  services: RunServices = {},
): Promise<RunOutcome> {
  const started = performance.now();
  const metaInput: ResultMetaInput = {
    taskId: req.id,
    groupId: req.info.group,
    parentId: req.info.parentId,
    status: "FAILURE",
    result: null,
  };
  let body: TaskBody;
  try {
    if (req.decoded) {
      body = req.decoded;
    } else {
      const needs = codecsFor(req.contentType, req.headers.compression);
      if (needs.msgpack || needs.compression) await loadCodecs(needs);
      body = decodeTaskBody(req, req.id, services.maxDecompressedSize);
    }
  } catch (err) {
    return { ...failedBeforeRun(req, err, refusalInfo(err)), refused: (err as Error).message };
  }
  if (req.extended) {
    metaInput.extended = {
      name: req.task,
      args: body.args,
      kwargs: body.kwargs,
      worker: req.info.hostname,
      retries: req.info.retries,
      queue: req.info.queue,
    };
  }
  const task = tasks.get(req.task);
  const hooks = task
    ? runHooks(task, {
      id: req.id,
      name: req.task,
      args: body.args,
      kwargs: body.kwargs,
      retries: req.info.retries,
    }, services.signals)
    : null;
  const followUps = needsFollowUp(body.embed);
  const state = { name: req.task, id: req.id, retries: req.info.retries, ...body };
  let planned: { plan: PlannedRetry; signal: Retry } | null = null;
  const replacer = taskReplacer({
    id: req.id,
    group: req.info.group,
    groupIndex: req.info.groupIndex ?? null,
    nesting: req.info.replacedTaskNesting ?? 0,
    embed: body.embed,
  });
  const retry = (options: RetryOptions = {}): never => {
    const plan = planRetry(state, options, task?.options ?? {}, new Date());
    if (plan instanceof Error) throw plan;
    planned = { plan, signal: new Retry(plan.when, plan.eta, options.exc ?? undefined) };
    throw planned.signal;
  };
  const retryOutcome = (): RunOutcome => {
    const { plan, signal: sig } = planned!;
    const cause = sig.cause;
    return {
      seq: req.seq,
      ok: false,
      exc: cause === undefined ? undefined : exceptionInfo(cause),
      meta: encodeResultMetaWithJson(
        {
          ...metaInput,
          status: "RETRY",
          result: null,
          traceback: tracebackText(sig),
          children: [[[req.id, null], null]],
        },
        cause === undefined ? "null" : pyJsonDumps(exceptionInfo(cause)),
      ),
      retry: { ...plan, embed: body.embed },
      runtime: performance.now() - started,
      traceback: req.describe ? tracebackText(sig) : undefined,
    };
  };
  /** Milliseconds the handler held the thread before returning or awaiting. */
  let blocked: number | undefined;
  const timed = (call: () => unknown): unknown => {
    const began = performance.now();
    let value: unknown;
    try {
      return value = call();
    } finally {
      blocked = performance.now() - began;
      services.firstRun?.(req.seq, blocked, value instanceof Promise);
    }
  };
  const retried = async (): Promise<RunOutcome> => {
    const outcome = { ...retryOutcome(), blocked };
    await hooks?.retry(planned!.signal.cause);
    return outcome;
  };
  try {
    if (!task?.handler) throw new Error(`Task ${req.task} is not defined in this worker's app`);
    await hooks?.prerun();
    const args = callArgs(task, body);
    checkCall(task, body, args);
    const handler = task.handler as (...a: unknown[]) => unknown;
    if (req.timeLimits) services.started?.(req.seq);
    const rootId = req.info.rootId ?? req.id;
    let value: unknown;
    if (task.options.bind) {
      const ctx: TaskContext = {
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
        signal,
        retry,
        replace: replacer.replace,
        updateState: stateUpdater(req, services.storeState),
      };
      value = await currentTask.run(
        { id: req.id, rootId },
        () => timed(() => handler(ctx, ...args)),
      );
    } else {
      value = await currentTask.run({ id: req.id, rootId }, () => timed(() => handler(...args)));
    }
    // A replacement, even one the handler did not await or caught: it ends the task all the same.
    await replacer.pending();
    if (planned) return await retried();
    const store = req.storeResult && !task.options.ignoreResult;
    const outcome: RunOutcome = {
      seq: req.seq,
      ok: true,
      meta: store
        ? encodeResultMetaWithJson(
          { ...metaInput, status: "SUCCESS", result: null, dateDone: new Date() },
          resultJson(value),
        )
        : undefined,
      followUp: followUps ? { embed: body.embed, value } : undefined,
      runtime: performance.now() - started,
      blocked,
      repr: req.describe ? resultRepr(value) : undefined,
    };
    await hooks?.success(value);
    return outcome;
  } catch (thrown) {
    // Once its replacement is sent the task's id is the replacement's: a handler that caught
    // the signal and threw or retried must not finish it a second time.
    const replaced = thrown instanceof Replaced && thrown.taskId === req.id
      ? thrown
      : await replacer.sent();
    if (replaced) {
      return {
        seq: req.seq,
        ok: true,
        replacedBy: replaced.replacement,
        runtime: performance.now() - started,
        blocked,
      };
    }
    let err = thrown;
    const auto = planned || !task ? null : autoretryOptions(task.options, err, state.retries);
    if (auto) {
      try {
        retry(auto);
      } catch (e) {
        err = e;
      }
    }
    if (planned) return await retried();
    const exc = exceptionInfo(reportedError(err, `${req.task}[${req.id}]`, signal));
    const traceback = tracebackText(err);
    await hooks?.failure(err, traceback);
    return {
      seq: req.seq,
      ok: false,
      exc,
      meta: encodeResultMetaWithJson(
        {
          ...metaInput,
          status: "FAILURE",
          result: null,
          traceback,
          dateDone: new Date(),
        },
        pyJsonDumps(exc),
      ),
      followUp: followUps ? { embed: body.embed, value: null } : undefined,
      runtime: performance.now() - started,
      blocked,
      traceback: req.describe ? traceback : undefined,
    };
  }
}
