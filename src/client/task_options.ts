/**
 * What a task is defined and called with: the handler types, the task's
 * options, one call's options, the context a bound handler receives, and
 * the sender interface the app implements.
 *
 * @module
 */

import type { CompressionName } from "../protocol/compression_names.ts";
import type { TaskState } from "../protocol/result_meta.ts";
import type { SerializerName } from "../protocol/serializers.ts";
import type { AsyncResult } from "./async_result.ts";
import type { TaskPermissions } from "./permissions.ts";
import type { Group, Signature } from "./canvas/signature.ts";
import type { PublishRetryPolicy } from "./publish_retry.ts";
import type { RetryOptions } from "./retry.ts";
import type { TaskRunInfo } from "./signals.ts";

/**
 * What a bound task (`bind: true`) receives as its first argument.
 *
 * @example A bound task reading its context
 * ```ts
 * import { Celery, type TaskContext } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const download = app.task(
 *   "tasks.download",
 *   { bind: true },
 *   async (ctx: TaskContext, url: string) => {
 *     console.log(`${ctx.name}[${ctx.id}] try ${ctx.retries + 1} from ${ctx.deliveryInfo.queue}`);
 *     const res = await fetch(url, { signal: ctx.signal }); // stops on shutdown or time limit
 *     return res.status;
 *   },
 * );
 * ```
 */
export interface TaskContext {
  /** The task id. */
  readonly id: string;
  /** The task name. */
  readonly name: string;
  /** Positional arguments as received. */
  readonly args: readonly unknown[];
  /** Keyword arguments as received (Celery kwargs). */
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** How many times this task has been retried. */
  readonly retries: number;
  /** Every message header, including custom ones. */
  readonly headers: Readonly<Record<string, unknown>>;
  /** Workflow root id. */
  readonly rootId: string | null;
  /** Id of the task that sent this one. */
  readonly parentId: string | null;
  /** Group id, for group members. */
  readonly group: string | null;
  /** Earliest run time, if it had one. */
  readonly eta: Date | null;
  /** Expiry time, if it had one. */
  readonly expires: Date | null;
  /** Node name of the worker running it. */
  readonly hostname: string;
  /** Queue it came from, and whether it was delivered before. */
  readonly deliveryInfo: { readonly queue: string; readonly redelivered: boolean };
  /** Aborted when the worker wants the task to stop (shutdown, time limit). */
  readonly signal: AbortSignal;
  /**
   * Retry this task later [`self.retry()`]: the same task id is sent again
   * with `retries + 1`, after `countdown` seconds (default the task's
   * `defaultRetryDelay`), and RETRY is stored meanwhile. Throws a `Retry`
   * signal that stops the handler, so `ctx.retry()` and
   * `throw ctx.retry()` do the same. Past the retry limit it throws
   * `options.exc` if given, else a `MaxRetriesExceededError`: the task
   * fails with that error.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * app.task("tasks.fetch", { bind: true }, async (ctx, url: string) => {
   *   const res = await fetch(url);
   *   if (res.status === 503) throw ctx.retry({ countdown: 30, exc: new Error("busy") });
   *   return await res.text();
   * });
   * ```
   */
  retry(options?: RetryOptions): never;
  /**
   * Replace this task with a signature — a task, chain, group or chord
   * [`self.replace()`]: the replacement is sent now and finishes under this
   * task's id (a group's results as one list), in its group or chord, with
   * its callbacks, errbacks and the rest of its chain, so the caller's
   * result handle and the workflow carry on. The task stores nothing itself;
   * the returned promise rejects with a `Replaced` signal once the
   * replacement is sent, which ends the handler: `return ctx.replace(sig)`.
   * Celery 5.2's own rule: the signature may not be part of a chord.
   *
   * @example
   * ```ts
   * import { Celery, group } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const fetchOne = app.task("tasks.fetch_one", async (url: string) => (await fetch(url)).status);
   * const fetchAll = app.task("tasks.fetch_all", { bind: true }, (ctx, urls: string[]) =>
   *   ctx.replace(group(urls.map((u) => fetchOne.s(u)))));
   * ```
   */
  replace(sig: Signature<unknown> | Group<unknown[]>): Promise<never>;
  /**
   * Store a state of your own with a meta object [`self.update_state()`],
   * e.g. progress: `{ state: "PROGRESS", meta: { done, total } }`. Clients
   * see it as the task's state and info (Python's `AsyncResult.info`,
   * Celeriac's `AsyncResult.onProgress`) until the task finishes. Resolves
   * once stored; nothing is stored when the worker has no result backend.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const importRows = app.task("tasks.import_rows", { bind: true }, async (ctx, rows: string[]) => {
   *   for (const [i, row] of rows.entries()) {
   *     await Deno.writeTextFile("imported.txt", row + "\n", { append: true });
   *     await ctx.updateState({ state: "PROGRESS", meta: { done: i + 1, total: rows.length } });
   *   }
   * });
   * ```
   *
   * @throws {TypeError} for a missing state, or SUCCESS / FAILURE / REVOKED (return or throw instead)
   * @throws {EncodeError} when the meta cannot be stored as JSON
   */
  updateState(update: StateUpdate): Promise<void>;
}

/**
 * What an old-style errback gets first: the failed task's request, as
 * Celery passes its `request` to an errback `(request, exc, traceback)`.
 * A worker whose task fails calls a `link_error` errback in-process, with
 * no message, when it defines the errback's task unbound with two or more
 * parameters (a rest parameter counts), as Celery 5.2 does; the errback's
 * own signature arguments follow the three. A one-parameter or bound
 * errback is sent as a task with the failed task's id instead. The errback
 * of a chord body whose header failed gets a request made from the body's
 * signature, the `ChordError` and a `null` traceback (Celery's
 * `chord_error_from_stack`).
 *
 * @example
 * ```ts
 * import { Celery, type ErrbackRequest } from "@celeriac/celeriac";
 * const app = new Celery();
 * const onError = app.task(
 *   "tasks.on_error",
 *   (request: ErrbackRequest, exc: unknown, traceback: string | null) => {
 *     console.error(`${request.name}[${request.id}] failed: ${exc}\n${traceback}`);
 *   },
 * );
 * ```
 */
export type ErrbackRequest = Omit<TaskContext, "signal" | "retry" | "replace" | "updateState">;

/**
 * A state a task reports with `ctx.updateState()`.
 *
 * @example
 * ```ts
 * import type { StateUpdate } from "@celeriac/celeriac";
 * const update: StateUpdate = { state: "PROGRESS", meta: { done: 3, total: 10 } };
 * ```
 */
export interface StateUpdate {
  /** The state name, e.g. `PROGRESS` (not SUCCESS, FAILURE or REVOKED). */
  state: string;
  /** What clients read as the task's info (JSON-encodable). Default `null`. */
  meta?: unknown;
}

/**
 * A handler taking positional arguments.
 *
 * @example A handler defined apart from its task
 * ```ts
 * import { Celery, type TaskHandler } from "@celeriac/celeriac";
 * const add: TaskHandler<[number, number], number> = (a, b) => a + b;
 * const app = new Celery({ broker: "kv://:memory:" });
 * const addTask = app.task("tasks.add", add); // Task<[number, number], number>
 * ```
 */
export type TaskHandler<A extends unknown[], R> = (...args: A) => R | Promise<R>;

/**
 * A bound handler: the task context first, then positional arguments.
 *
 * @example A bound handler defined apart from its task
 * ```ts
 * import { type BoundTaskHandler, Celery } from "@celeriac/celeriac";
 * const greet: BoundTaskHandler<[string], string> = (ctx, name) =>
 *   `hello ${name}, from ${ctx.hostname} (task ${ctx.id})`;
 * const app = new Celery({ broker: "kv://:memory:" });
 * const greetTask = app.task("tasks.greet", { bind: true }, greet);
 * ```
 */
export type BoundTaskHandler<A extends unknown[], R> = (
  ctx: TaskContext,
  ...args: A
) => R | Promise<R>;

/**
 * Options of a task definition. Celery's attribute names are given in brackets.
 *
 * @example Options shared by several tasks
 * ```ts
 * import { Celery, type TaskOptions } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const billing = {
 *   queue: "billing",
 *   acksLate: true, // redelivered if the worker dies mid-task
 *   trackStarted: true,
 * } satisfies TaskOptions;
 * const charge = app.task(
 *   "billing.charge",
 *   { ...billing, params: ["invoiceId", "cents"] }, // Python may call charge(invoiceId=..., cents=...)
 *   (invoiceId: string, cents: number) => ({ invoiceId, charged: cents }),
 * );
 * ```
 */
export interface TaskOptions {
  /** Pass the {@link TaskContext} as first argument [`bind`]. Default false. */
  bind?: boolean;
  /**
   * Names of the positional parameters, so that Celery keyword arguments
   * (e.g. from Python `apply_async(kwargs={"a": 1})`) are placed by name.
   */
  params?: readonly string[];
  /**
   * Check each call this program sends with `delay()`, `applyAsync()` or
   * `delayMany()` against the handler, and throw `TaskArgumentsError`
   * instead of sending one it cannot take (as its worker would fail it with
   * Python's `TypeError`) [`typing`]. Default true; false sends such calls
   * unchecked, for workers whose definition of the task takes them.
   */
  typing?: boolean;
  /** Queue to send to when the call names none [`queue`]. */
  queue?: string;
  /** Default message priority [`priority`]. */
  priority?: number;
  /**
   * Store no result [`ignore_result`]: neither its success nor, unless
   * `storeErrorsEvenIfIgnored`, its failure. Sent in the task's messages, so
   * any worker honours it, and its handles' `get()` resolves `undefined` at
   * once. Default false.
   */
  ignoreResult?: boolean;
  /**
   * With `ignoreResult`: store the task's failures all the same
   * [`store_errors_even_if_ignored`]. Default false.
   */
  storeErrorsEvenIfIgnored?: boolean;
  /** Store STARTED when the task begins [`track_started`]. Default false. */
  trackStarted?: boolean;
  /**
   * Acknowledge after the task finishes instead of when it starts
   * [`acks_late`]: a worker crash mid-task then redelivers it. Default false.
   */
  acksLate?: boolean;
  /** Body serializer for calls of this task [`serializer`]. */
  serializer?: SerializerName;
  /**
   * Hard time limit in seconds [`time_limit`]: past it the Web Worker
   * running the task is terminated and the task fails with
   * `TimeLimitExceeded`. Sent with every call (the `timelimit` header).
   */
  timeLimit?: number;
  /**
   * Soft time limit in seconds [`soft_time_limit`]: `ctx.signal` fires
   * with a `SoftTimeLimitExceeded` reason, and the handler may clean up.
   * Sent with every call.
   */
  softTimeLimit?: number;
  /**
   * With `acksLate`: when the Web Worker running the task dies, requeue
   * the message instead of failing the task with `WorkerLostError`
   * [`reject_on_worker_lost`]. A task that always kills its Web Worker is
   * then redelivered forever. Default false (or the worker's setting).
   */
  rejectOnWorkerLost?: boolean;
  /**
   * Deno permissions the task's code runs with (default: the worker's
   * `--task-permissions`, else the worker process's). Tasks with
   * different permissions run in different groups of Web Workers.
   */
  permissions?: TaskPermissions;
  /**
   * How many times the task may be retried [`max_retries`]: a retry beyond
   * it fails the task with `MaxRetriesExceededError` (or the retry's `exc`).
   * Default 3; `null` retries forever.
   */
  maxRetries?: number | null;
  /** Seconds before a retry that names no countdown or eta [`default_retry_delay`]. Default 180. */
  defaultRetryDelay?: number;
  /**
   * Retry automatically when the handler throws a matching error
   * [`autoretry_for`]: error classes (matched with `instanceof`), or a
   * predicate. The thrown error is the retry's `exc`, so it is what the
   * task fails with once `maxRetries` is reached.
   */
  autoretryFor?:
    | readonly (abstract new (...args: never[]) => unknown)[]
    | ((err: unknown) => boolean);
  /** Options of automatic retries [`retry_kwargs`]: countdown and retry limit. */
  retryKwargs?: Pick<RetryOptions, "countdown" | "maxRetries">;
  /**
   * Exponential backoff for automatic retries [`retry_backoff`]: `true`
   * means a 1 s base, a number is the base in seconds; retry n waits
   * `base * 2^n` seconds, at most `retryBackoffMax`. Default false.
   */
  retryBackoff?: boolean | number;
  /** Longest backoff in seconds [`retry_backoff_max`]. Default 600. */
  retryBackoffMax?: number;
  /**
   * Full jitter [`retry_jitter`]: the backoff delay is drawn at random
   * between 0 and the computed delay. Default true.
   */
  retryJitter?: boolean;
  /**
   * Most runs per second, minute or hour [`rate_limit`]: `"10/s"`,
   * `"100/m"`, `"1000/h"`, or a number per second; 0 means no limit. On
   * Redis the limit holds across all workers; on the KV and AMQP brokers it
   * holds per worker. Tasks over the limit wait in the worker without
   * delaying other tasks.
   */
  rateLimit?: string | number;
  /**
   * Called in the worker after the handler returned [`on_success`], with
   * the return value. Runs where the task ran, before the worker stores the
   * result; an error it throws is logged and changes nothing.
   */
  onSuccess?: (value: unknown, task: TaskRunInfo) => void | Promise<void>;
  /**
   * Called in the worker after the handler threw (the task fails)
   * [`on_failure`], with the error and its traceback text.
   */
  onFailure?: (
    error: unknown,
    task: TaskRunInfo & { readonly traceback: string | null },
  ) => void | Promise<void>;
  /**
   * Called in the worker when the task is to be retried [`on_retry`], with
   * the retry's cause (`undefined` when `ctx.retry()` named none).
   */
  onRetry?: (error: unknown, task: TaskRunInfo) => void | Promise<void>;
  /**
   * Called in the worker after `onSuccess` / `onFailure` [`after_return`]
   * with the state (`SUCCESS` or `FAILURE`) and the return value or error;
   * not for retries, as in Celery.
   */
  afterReturn?: (state: TaskState, value: unknown, task: TaskRunInfo) => void | Promise<void>;
}

/**
 * Options of one call (`applyAsync`), as Celery's `apply_async` keywords.
 *
 * @example Calling with options
 * ```ts
 * import { type ApplyOptions, Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const options: ApplyOptions = {
 *   countdown: 30, // run in 30 s at the earliest
 *   expires: 300, // and not at all after 5 minutes
 *   queue: "math",
 *   priority: 0,
 *   headers: { tenant: "acme" },
 * };
 * const result = await add.applyAsync([2, 3], options);
 * console.log("sent", result.id);
 * await app.close();
 * ```
 */
export interface ApplyOptions {
  /** Keyword arguments [`kwargs`]. */
  kwargs?: Record<string, unknown>;
  /** Use this task id instead of a new UUID [`task_id`]. */
  taskId?: string;
  /** Run no earlier than this many seconds from now [`countdown`]. */
  countdown?: number;
  /** Run no earlier than this time [`eta`]. */
  eta?: Date | string;
  /** Do not run after: seconds from now, or a time [`expires`]. */
  expires?: number | Date | string;
  /** Message priority (Redis and KV: 0 is most urgent, up to 9) [`priority`]. */
  priority?: number;
  /** Queue to send to [`queue`]. */
  queue?: string;
  /** Exchange to publish to; default the default exchange `""` [`exchange`]. */
  exchange?: string;
  /** Routing key; default the queue name [`routing_key`]. */
  routingKey?: string;
  /** Extra message headers [`headers`]. */
  headers?: Record<string, unknown>;
  /** Display name for logs [`shadow`]. */
  shadow?: string;
  /** Ask the worker not to store the success result [`ignore_result`]. */
  ignoreResult?: boolean;
  /** Hard time limit in seconds [`time_limit`]. */
  timeLimit?: number;
  /** Soft time limit in seconds [`soft_time_limit`]. */
  softTimeLimit?: number;
  /** Body serializer [`serializer`]. */
  serializer?: SerializerName;
  /** Body compression [`compression`]. */
  compression?: CompressionName;
  /**
   * Retry the publish while the broker is unreachable [`retry`]. Default
   * the app's `taskPublishRetry` (true). Inside a worker the worker's own
   * connection publishes and this is not used.
   */
  retry?: boolean;
  /**
   * This call's publish retry policy, over the app's
   * `taskPublishRetryPolicy` [`retry_policy`]: the fields set here win.
   * Default none.
   */
  retryPolicy?: Partial<PublishRetryPolicy>;
}

/**
 * Sends a task call; implemented by the app.
 *
 * @example Code that sends tasks through any sender
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { type TaskSender } from "@celeriac/celeriac/protocol";
 * function sendWelcome(sender: TaskSender, userId: string) {
 *   return sender.sendTask<void>("emails.welcome", [userId], { queue: "emails" });
 * }
 * const app = new Celery({ broker: "kv://:memory:" }); // the app is a TaskSender
 * const result = await sendWelcome(app, "user-42");
 * console.log("queued", result.id);
 * await app.close();
 * ```
 */
export interface TaskSender {
  /** Publish a call of the named task. */
  sendTask<R>(
    name: string,
    args: readonly unknown[],
    options: ApplyOptions,
  ): Promise<AsyncResult<R>>;
  /** Publish many calls as one batch; senders without it get concurrent sendTask() calls. */
  sendMany?<R>(
    calls: readonly { name: string; args?: readonly unknown[]; options?: ApplyOptions }[],
    options?: SendManyOptions,
  ): Promise<AsyncResult<R>[]>;
}

/**
 * Options of a batch send (`app.sendMany()`), apart from each call's.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const controller = new AbortController();
 * const calls = [{ name: "tasks.add", args: [1, 2] }, { name: "tasks.add", args: [3, 4] }];
 * const results = await app.sendMany(calls, { signal: controller.signal });
 * ```
 */
export interface SendManyOptions {
  /**
   * Stops the batch. Aborted before anything is written: nothing is sent
   * and the send rejects with the signal's reason. Aborted once some
   * messages are written: what is not written yet is not sent, and the
   * send rejects with a `BatchSendError` telling each call's outcome
   * (`outcomes[i]`: sent, unsent or unknown) and task id (`ids[i]`). Redis writes a batch's LPUSHes all at once (so an
   * abort stops it only before them); RabbitMQ and KV write each queue's
   * first message alone, then the rest together. Default none.
   */
  signal?: AbortSignal;
}

/**
 * Options of `task.delayMany()`: the call options every call shares, and
 * the batch's `signal` ({@link SendManyOptions}).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * await add.delayMany([[1, 2], [3, 4]], { queue: "math", signal: AbortSignal.timeout(5_000) });
 * ```
 */
export interface DelayManyOptions extends ApplyOptions, SendManyOptions {}
