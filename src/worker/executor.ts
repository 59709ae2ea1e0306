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
import type { Signals } from "../client/signals.ts";
import { reportedError } from "./reported_error.ts";
import type { TimeLimits } from "./time_limits.ts";
import { autoretryOptions, type PlannedRetry, planRetry } from "./retry_policy.ts";
import { taskReplacer } from "./replace.ts";
import { refusalInfo } from "./result_entries.ts";

/**
 * A task to run, as the main thread hands it over (structured-cloneable).
 *
 * @example Running one task without a worker
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { decodeResultMeta, encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * import { type RunRequest, runTask } from "@celeriac/celeriac/worker";
 * const app = new Celery({ broker: "kv://:memory:" });
 * app.task("tasks.add", (a: number, b: number) => a + b);
 * const id = crypto.randomUUID();
 * const msg = encodeTaskMessage({
 *   task: "tasks.add", id, args: [2, 3], kwargs: {}, now: new Date(), origin: "gen1@host", replyTo: "r",
 * });
 * const req: RunRequest = {
 *   seq: 1,
 *   task: "tasks.add",
 *   id,
 *   body: msg.body,
 *   contentType: msg.contentType,
 *   contentEncoding: msg.contentEncoding,
 *   headers: msg.headers,
 *   storeResult: true,
 *   info: {
 *     retries: 0, rootId: id, parentId: null, group: null, eta: null, expires: null,
 *     queue: "celery", redelivered: false, hostname: "test@local",
 *   },
 * };
 * const outcome = await runTask(app.tasks, req, new AbortController().signal);
 * decodeResultMeta(outcome.meta!).result; // 5
 * ```
 */
export interface RunRequest {
  /** Dispatch number, echoed in the outcome. */
  seq: number;
  /** Task name. */
  task: string;
  /** Task id. */
  id: string;
  /** Serialized body. */
  body: Uint8Array;
  /** Body content type. */
  contentType: string;
  /** Body content encoding. */
  contentEncoding: string;
  /** Message headers (full set for bound tasks; at least `compression`). */
  headers: Record<string, unknown>;
  /** Already-decoded body (protocol 1 messages). */
  decoded?: TaskBody;
  /** Store the success result. */
  storeResult: boolean;
  /**
   * Also report the Python repr of the return value and the traceback of a
   * failure or retry (for task events). Default false.
   */
  describe?: boolean;
  /** Store Celery's `result_extended` fields (name, args, ...) in the result. Default false. */
  extended?: boolean;
  /** Time limits, enforced by the pool on the main thread; none when absent. */
  timeLimits?: TimeLimits;
  /** Fields of the task context and the result meta. */
  info: {
    retries: number;
    rootId: string | null;
    parentId: string | null;
    group: string | null;
    /** Position in a chord header; absent or null outside one. */
    groupIndex?: number | null;
    /** Its `replaced_task_nesting`; absent means 0. */
    replacedTaskNesting?: number;
    eta: Date | null;
    expires: Date | null;
    queue: string;
    redelivered: boolean;
    hostname: string;
  };
}

/**
 * The outcome of a run, posted back to the main thread.
 *
 * @example Logging an outcome
 * ```ts
 * import type { RunOutcome } from "@celeriac/celeriac/worker";
 * function describe(outcome: RunOutcome): string {
 *   const ms = outcome.runtime.toFixed(1);
 *   if (outcome.refused) return `#${outcome.seq} refused: ${outcome.refused}`;
 *   if (!outcome.ok) return `#${outcome.seq} failed after ${ms} ms: ${outcome.exc?.exc_type}`;
 *   return `#${outcome.seq} succeeded in ${ms} ms`;
 * }
 * describe({ seq: 7, ok: true, runtime: 12.34 }); // "#7 succeeded in 12.3 ms"
 * ```
 */
export interface RunOutcome {
  /** Dispatch number of the request. */
  seq: number;
  /** Whether the handler returned normally. */
  ok: boolean;
  /** The meta JSON to store (`undefined` when nothing is to be stored). */
  meta?: string;
  /** The exception, for failures (logged by the main thread). */
  exc?: ExceptionInfo;
  /**
   * Set when the message itself could not be used (undecodable body,
   * refused content type): the main thread parks it.
   */
  refused?: string;
  /** Workflow data and the return value, present only when follow-ups are due. */
  followUp?: { embed: Embed; value: unknown };
  /**
   * Set when the task asked to be retried (`ctx.retry()` or `autoretryFor`):
   * the main thread publishes the retry, stores the RETRY `meta` and then
   * acknowledges the message.
   */
  retry?: PlannedRetry & { embed: Embed };
  /**
   * Set when the task replaced itself (`ctx.replace()`): the replacing
   * signature's task name. Nothing is stored or sent for the task itself.
   */
  replacedBy?: string;
  /** Milliseconds the handler ran. */
  runtime: number;
  /**
   * Milliseconds the task held its thread before returning or awaiting
   * (all of `runtime` for synchronous CPU-bound code): what tasks queued
   * behind it wait for; absent when the handler did not run. A Web Worker
   * that can read its thread's CPU time adds the task's share of it after
   * that first await (`cpu_share.ts`), before the outcome leaves it.
   */
  blocked?: number;
  /** Python repr of the return value (truncated), when the request asked to `describe`. */
  repr?: string;
  /** Traceback of a failure or retry, when the request asked to `describe`. */
  traceback?: string;
}

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
 * What a running task can reach beyond its own Web Worker, and the limit
 * its body is decoded under.
 *
 * @example
 * ```ts ignore
 * const services: RunServices = { storeState: (seq, status, meta) => backend.store(...) };
 * ```
 */
export interface RunServices {
  /**
   * Store a state that running task `seq` reports with `ctx.updateState()`;
   * resolves once stored. Without it nothing is stored.
   */
  storeState?: (seq: number, status: string, meta: string) => Promise<void>;
  /** The app's signals (`taskPrerun`, `taskPostrun`, `taskFailure`). */
  signals?: Signals;
  /**
   * The most bytes a compressed body may decompress to (the worker's
   * `maxDecompressedSize`); over it the request is refused. Default
   * `MAX_DECOMPRESSED_SIZE`.
   */
  maxDecompressedSize?: number;
  /**
   * Called for a request with time limits when its handler is about to be
   * called (its body decoded, `taskPrerun` done): the pool starts its time
   * limits then, not while it waits behind other tasks of its thread.
   */
  started?: (seq: number) => void;
  /**
   * Called when a handler's synchronous run ends (it returned, threw or
   * awaited) with the request's `seq` and whether the handler returned a
   * promise: `BatchRunner` shares the thread's later CPU time among the
   * tasks that await (`cpu_share.ts`).
   */
  firstRun?: (seq: number, awaits: boolean) => void;
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
      services.firstRun?.(req.seq, value instanceof Promise);
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
