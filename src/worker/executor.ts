/**
 * Runs one task: decode the body, call the handler with the right
 * arguments, and encode the outcome (the result meta to store, and what the
 * main thread needs for follow-up tasks). Used inside Web Workers and by the
 * inline pool, through batch_runner.ts (many runs, outcomes in batches).
 * The handler's arguments and request are built in call_args.ts.
 *
 * @module
 */

import { currentTask } from "../client/current.ts";
import { Replaced } from "../client/replaced.ts";
import { Retry, type RetryOptions } from "../client/retry.ts";
import type { Task } from "../client/task.ts";
import type { TaskContext } from "../client/task_options.ts";
import { codecsToLoad, loadCodecs } from "../protocol/codecs.ts";
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
import { callArgs, checkCall } from "../client/arity.ts";
import { argsPlacer, requestOf } from "./call_args.ts";
import { callErrbacks, keepErrbackCall, splitErrbacks } from "./errbacks.ts";
import { ExitCalled, noteRunning } from "./exit_called.ts";
import { checkFollowUps } from "./follow_up_check.ts";
import { stateUpdater } from "./task_state.ts";
import { type RunHooks, runHooks } from "./task_hooks.ts";
import { reportedError } from "./reported_error.ts";
import { autoretryOptions, type PlannedRetry, planRetry } from "./retry_policy.ts";
import { type Replacer, taskReplacer } from "./replace.ts";
import { refusalInfo } from "./result_entries.ts";
import type { RunOutcome, RunRequest, RunServices } from "./run_types.ts";

export type { RunOutcome, RunRequest, RunServices } from "./run_types.ts";

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

/** The outcome of a request revoked before its handler was called: nothing ran, nothing to store. */
function revokedBeforeRun(req: RunRequest): RunOutcome {
  return { seq: req.seq, ok: false, revoked: true, runtime: 0 };
}

/** Whether a handler's return value is awaited (a promise or any other thenable). */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" && value !== null || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function";
}

/** A retry the task asked for: its plan and the signal thrown to end the handler. */
interface Planned {
  plan: PlannedRetry;
  signal: Retry;
}

/** Plan a retry of the running task; the plan's error when it cannot be retried. */
function planFor(
  req: RunRequest,
  body: TaskBody,
  task: Task<never, unknown> | undefined,
  options: RetryOptions,
): Planned | Error {
  const state = { name: req.task, id: req.id, retries: req.info.retries, ...body };
  const plan = planRetry(state, options, task?.options ?? {}, new Date());
  if (plan instanceof Error) return plan;
  return { plan, signal: new Retry(plan.when, plan.eta, options.exc ?? undefined) };
}

/** The RETRY outcome of a task that asked for `planned`, once its hooks ran. */
async function retried(
  req: RunRequest,
  body: TaskBody,
  metaInput: ResultMetaInput,
  planned: Planned,
  times: { runtime: number; blocked: number | undefined },
  hooks: RunHooks | null,
): Promise<RunOutcome> {
  const { plan, signal: sig } = planned;
  const cause = sig.cause;
  const outcome: RunOutcome = {
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
    runtime: times.runtime,
    traceback: req.describe ? tracebackText(sig) : undefined,
    blocked: times.blocked,
  };
  await hooks?.retry(sig.cause);
  return outcome;
}

/**
 * Run one task request against a registry of tasks. The clock is read
 * where the handler is called and where its synchronous run ends (`blocked`,
 * and `runtime` of a handler that did not return a promise), and once more
 * when a promise it returned settles or it threw; for a task with hooks or
 * signals, also before its `taskPrerun` signal, where `runtime` then starts
 * (as Celery's: the trace's, not the handler's alone). A request revoked
 * since it was handed over (`services.revoked`) is not run: asked at once,
 * and again just before the handler is called (tasks of one batch wait for
 * those before them, after their `taskPrerun`), it ends with a `revoked`
 * outcome (found at the second check, after a `taskPostrun` with state
 * `REVOKED`: its `taskPrerun` had been sent).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { type RunRequest, runTask } from "@celeriac/celeriac/worker";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * // A worker's pool runs each request it receives from the broker:
 * const run = (request: RunRequest) => runTask(app.tasks, request, AbortSignal.timeout(60_000));
 * ```
 *
 * @param tasks the registry
 * @param req the request
 * @param signal aborted when the worker wants the task to stop
 * @param services what the task may reach (state updates); none by default
 * @returns the outcome
 * @throws {ExitCalled} when its code called `Deno.exit()` or `close()` in a
 * pool Web Worker (the thread ends): no hook, errback or retry runs after it
 */
export async function runTask(
  tasks: ReadonlyMap<string, Task<never, unknown>>,
  req: RunRequest,
  signal: AbortSignal,
  services: RunServices = {},
): Promise<RunOutcome> {
  if (services.revoked?.(req.seq)) return revokedBeforeRun(req);
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
      const needs = codecsToLoad(req.contentType, req.headers.compression);
      if (needs) await loadCodecs(needs);
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
  let planned: Planned | null = null;
  /** Only a bound task can replace itself (`ctx.replace`). */
  let replacer: Replacer | null = null;
  /** When the handler was called (`performance.now()`); undefined until then. */
  let began: number | undefined;
  /**
   * When the task's trace began, before its `taskPrerun` signal, where Celery's tracer starts
   * the runtime it reports; read only when there are hooks: without, it is `began`.
   */
  let traced: number | undefined;
  /** Milliseconds the handler held the thread before returning or awaiting. */
  let blocked: number | undefined;
  /** Whether what was thrown came after the handler succeeded (a follow-up that does not fit). */
  let outsideBody = false;
  /** Before hooks or errbacks run: they may await a task to start on this thread after this one. */
  const follow = () => services.following?.(req.seq);
  /**
   * The handler threw and in-process errbacks are to run: its finish is
   * noted after them, so that its time limits (and a terminate) cover them,
   * as Celery calls them in the task's process.
   */
  let finishLater = false;
  const finish = (returned: boolean) => {
    if (!returned && splitErrbacks(tasks, body.embed.errbacks).local.length) finishLater = true;
    else services.finished?.(req.seq, blocked ?? 0);
  };
  const finishNow = () => {
    if (!finishLater) return;
    finishLater = false;
    services.finished?.(req.seq, blocked ?? 0);
    // Follow-up code after it may await a task to start here: no start waits for this one.
    follow();
  };
  try {
    if (!task?.handler) throw new Error(`Task ${req.task} is not defined in this worker's app`);
    if (hooks) traced = performance.now();
    await hooks?.prerun();
    const args = callArgs(task, body);
    checkCall(task, body, args);
    const handler = task.handler as (...a: unknown[]) => unknown;
    // Outcomes of tasks that ran before it are handed on first: its hard limit, or a terminate
    // of it, would lose them with the thread.
    const hard = !!req.timeLimits?.hard;
    for (let w = services.flushed?.(req.seq, hard); w; w = services.flushed?.(req.seq, hard)) {
      await w;
    }
    // Its start is written (unless halted) before the revoke is read: a terminate that finds it not
    // started does not run it (revoked: not stopped; halted: put back); one that does, stops it.
    const begun = services.started?.(req.seq) ?? true;
    if (services.revoked?.(req.seq)) {
      await hooks?.revoked();
      return revokedBeforeRun(req);
    }
    if (!begun) return { seq: req.seq, ok: false, runtime: 0 };
    const running = { id: req.id, rootId: req.info.rootId ?? req.id, name: req.task };
    noteRunning(running, req.seq);
    let value: unknown;
    let ctx: TaskContext | null = null;
    if (task.options.bind) {
      const r = replacer = taskReplacer({
        id: req.id,
        group: req.info.group,
        groupIndex: req.info.groupIndex ?? null,
        nesting: req.info.replacedTaskNesting ?? 0,
        embed: body.embed,
      });
      ctx = {
        ...requestOf(req, body),
        signal,
        retry: (options: RetryOptions = {}): never => {
          const p = planFor(req, body, task, options);
          if (p instanceof Error) throw p;
          planned = p;
          throw p.signal;
        },
        replace: r.replace,
        updateState: stateUpdater(req, services.storeState),
      };
    }
    began = performance.now();
    let returned = false;
    try {
      value = ctx
        ? currentTask.run(running, handler, ctx, ...args)
        : currentTask.run(running, handler, ...args);
      returned = true;
    } finally {
      blocked = performance.now() - began;
      const awaits = isThenable(value);
      services.firstRun?.(req.seq, awaits);
      if (!awaits) finish(returned);
    }
    let runtime = blocked;
    if (isThenable(value)) {
      returned = false;
      try {
        value = await value;
        returned = true;
      } finally {
        finish(returned);
      }
      runtime = performance.now() - began;
    }
    if (traced !== undefined) runtime += began - traced;
    // A replacement, even one the handler did not await or caught: it ends the task all the same.
    if (replacer) await replacer.pending();
    if (planned) {
      if (hooks) follow();
      return await retried(req, body, metaInput, planned, { runtime, blocked }, hooks);
    }
    // As a Celery worker's apply_async of them: a follow-up that does not fit fails this task,
    // with an error raised outside its body, which autoretryFor does not retry (the body ran).
    try {
      checkFollowUps(tasks, body.embed, value, argsPlacer(body));
    } catch (err) {
      outsideBody = true;
      throw err;
    }
    const outcome: RunOutcome = { seq: req.seq, ok: true, runtime, blocked };
    if (req.storeResult && !task.options.ignoreResult) {
      metaInput.status = "SUCCESS";
      metaInput.dateDone = new Date();
      outcome.meta = encodeResultMetaWithJson(metaInput, resultJson(value));
    }
    if (needsFollowUp(body.embed)) outcome.followUp = { embed: body.embed, value };
    // A post that refuses its value turns it into a failure, whose errbacks then run here.
    if (outcome.followUp && body.embed.errbacks?.length) {
      const place = argsPlacer(body);
      keepErrbackCall(
        outcome,
        (local, exc, traceback) => callErrbacks(local, requestOf(req, body), exc, traceback, place),
      );
    }
    if (req.describe) outcome.repr = resultRepr(value);
    if (hooks) follow();
    await hooks?.success(value);
    return outcome;
  } catch (thrown) {
    // Its thread ends (a pool Web Worker's guarded Deno.exit): no hook, errback or retry runs, and
    // the pool reports the task lost with its thread.
    if (thrown instanceof ExitCalled) throw thrown;
    const from = traced ?? began;
    const runtime = from === undefined ? 0 : performance.now() - from;
    // Once its replacement is sent the task's id is the replacement's: a handler that caught
    // the signal and threw or retried must not finish it a second time.
    const replaced = thrown instanceof Replaced && thrown.taskId === req.id
      ? thrown
      : replacer
      ? await replacer.sent()
      : null;
    if (replaced) {
      finishNow();
      return { seq: req.seq, ok: true, replacedBy: replaced.replacement, runtime, blocked };
    }
    let err = thrown;
    const auto = planned || outsideBody || !task
      ? null
      : autoretryOptions(task.options, err, req.info.retries);
    if (auto) {
      const p = planFor(req, body, task, auto);
      if (p instanceof Error) {
        err = p;
      } else {
        planned = p;
        err = p.signal;
      }
    }
    if (hooks) follow();
    if (planned) {
      finishNow();
      return await retried(req, body, metaInput, planned, { runtime, blocked }, hooks);
    }
    const reported = reportedError(err, `${req.task}[${req.id}]`, signal, services.sandboxed);
    const exc = exceptionInfo(reported);
    const traceback = tracebackText(err);
    const meta = encodeResultMetaWithJson(
      { ...metaInput, status: "FAILURE", result: null, traceback, dateDone: new Date() },
      pyJsonDumps(exc),
    );
    let embed = body.embed;
    // As Celery's trace: a task with ignore_result stores its failure only with
    // store_errors_even_if_ignored (a call's own ignoreResult leaves failures stored).
    const unstored = task?.options.ignoreResult === true &&
      task.options.storeErrorsEvenIfIgnored !== true;
    let stored = unstored;
    const errbacks = splitErrbacks(tasks, embed.errbacks);
    if (errbacks.local.length) {
      follow();
      // Celery calls them once the FAILURE is stored: stored here, once, with the task's children.
      if (!unstored) {
        await services.storeState?.(req.seq, "FAILURE", meta, true);
        stored = services.storeState !== undefined;
      }
      const place = argsPlacer(body);
      try {
        await callErrbacks(errbacks.local, requestOf(req, body), reported, traceback, place);
      } finally {
        finishNow();
      }
      embed = { ...embed, errbacks: errbacks.sent };
    }
    finishNow();
    await hooks?.failure(err, traceback);
    return {
      seq: req.seq,
      ok: false,
      exc,
      meta,
      stored: stored || undefined,
      followUp: needsFollowUp(embed) ? { embed, value: null } : undefined,
      runtime,
      blocked,
      // Always: the main thread logs a failure with it, as Celery does.
      traceback,
    };
  } finally {
    // Whatever threw on the way: its finish is noted.
    finishNow();
  }
}
