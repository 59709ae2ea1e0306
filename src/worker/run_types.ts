/**
 * What passes between the pool and a task run: the request the main thread
 * hands a Web Worker, the outcome it posts back, and the services a run may
 * reach. The run itself is in executor.ts.
 *
 * @module
 */

import type { Signals } from "../client/signals.ts";
import type { Embed, TaskBody } from "../protocol/message.ts";
import type { ExceptionInfo } from "../protocol/result_meta.ts";
import type { TimeLimits } from "./time_limits.ts";
import type { PlannedRetry } from "./retry_policy.ts";

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
   * retry (for task events; a failure's traceback is always reported).
   * Default false.
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
  /**
   * The main thread does not store its `meta`: it was stored already (a
   * failure with in-process errbacks, stored before they ran, with its
   * children), or it is the failure of a task with `ignoreResult` (and not
   * `storeErrorsEvenIfIgnored`), which Celery does not store. The rest of its
   * canvas is settled as usual.
   */
  stored?: boolean;
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
  /**
   * Milliseconds the task ran: from before its `taskPrerun` signal to the end of its handler,
   * not its `onSuccess`, `afterReturn` or `taskPostrun` (Celery's `runtime`, which also starts
   * before the prerun signal and ends before `on_success`).
   */
  runtime: number;
  /**
   * Milliseconds the task held its thread before returning or awaiting
   * (all of `runtime` for synchronous CPU-bound code): what tasks queued
   * behind it wait for; absent when the handler did not run. A Web Worker
   * that can read its thread's CPU time adds the task's share of it after
   * that first await (`cpu_share.ts`), before the outcome leaves it.
   */
  blocked?: number;
  /**
   * Set when the task was revoked after it was handed over and before its
   * handler was called ({@link RunServices.revoked}): it did not run, and
   * the main thread stores it REVOKED.
   */
  revoked?: boolean;
  /** Python repr of the return value (truncated), when the request asked to `describe`. */
  repr?: string;
  /**
   * Traceback of a failure (always: the worker logs it, as Celery does) or
   * of a retry (when the request asked to `describe`).
   */
  traceback?: string;
}

/**
 * What a running task can reach beyond its own Web Worker, and the limit
 * its body is decoded under.
 *
 * @example
 * ```ts
 * import type { RunServices } from "@celeriac/celeriac/worker";
 * const services: RunServices = {
 *   // A worker stores the state in its result backend.
 *   storeState: async (seq, status, meta) => console.log(seq, status, meta),
 * };
 * ```
 */
export interface RunServices {
  /**
   * Store a state that running task `seq` reports with `ctx.updateState()`;
   * resolves once stored. Without it nothing is stored. `final`: the task's
   * own FAILURE, stored before its in-process errbacks (as Celery stores it
   * once, then calls them): the children it sent are added to it, and its
   * outcome then says `stored`.
   */
  storeState?: (seq: number, status: string, meta: string, final?: boolean) => Promise<void>;
  /** The app's signals (`taskPrerun`, `taskPostrun`, `taskFailure`). */
  signals?: Signals;
  /**
   * The most bytes a compressed body may decompress to (the worker's
   * `maxDecompressedSize`); over it the request is refused. Default
   * `MAX_DECOMPRESSED_SIZE`.
   */
  maxDecompressedSize?: number;
  /**
   * Whether tasks run in a permission sandbox (else with the worker's own
   * permissions): a `PermissionDenied` says which permissions to change.
   */
  sandboxed?: boolean;
  /**
   * Called for every request when its handler is about to be called (its
   * body decoded, `taskPrerun` done): the pool starts its time limits then,
   * not while it waits behind other tasks of its thread, and knows it ran if
   * the thread is then terminated. Returns false when the thread was
   * terminated first: its handler is then not called, and the outcome
   * returned is never delivered.
   */
  started?: (seq: number) => boolean;
  /**
   * Called when a handler has returned or thrown, or the promise it returned
   * settled: the task has run, whatever is still to do for its outcome.
   * `blocked`: milliseconds its handler held the thread before returning or
   * awaiting.
   */
  finished?: (seq: number, blocked: number) => void;
  /**
   * Called after `finished` when the follow-up code of request `seq` starts
   * (its hooks, task signal listeners or in-process errbacks): code that may
   * await anything, even a request to start on this thread after it, so
   * `flushed` no longer waits for its outcome.
   */
  following?: (seq: number) => void;
  /**
   * Called for every request `seq` before its start: a promise while
   * outcomes of tasks that finished on this thread (and whose follow-up code,
   * see `following`, has not started) are still to be handed on, or requests that came before it wait to start (awaited, then asked
   * again), so that those outcomes are not in the thread when it may be
   * terminated (a hard time limit of this request, when `hard`; a revoke
   * with terminate of it); undefined when it may start: none is, or,
   * without `hard`, those outcomes are of less work than a hand-off is worth.
   */
  flushed?: (seq: number, hard: boolean) => Promise<void> | undefined;
  /**
   * Whether request `seq` was revoked since it was handed over: asked when
   * its run starts and again just before its handler is called (a task
   * waiting behind others of its thread); when true the handler is not
   * called and the outcome is `revoked`. Default: never.
   */
  revoked?: (seq: number) => boolean;
  /**
   * Called when a handler's synchronous run ends (it returned, threw or
   * awaited) with the request's `seq` and whether the handler returned a
   * promise or another thenable (what the run awaits): `BatchRunner`
   * shares the thread's later CPU time among the tasks that await
   * (`cpu_share.ts`).
   */
  firstRun?: (seq: number, awaits: boolean) => void;
}
