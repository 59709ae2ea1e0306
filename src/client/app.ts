/**
 * The {@link Celery} app: the task registry, the producer and result
 * handles. What it is besides (configuration, signals, remote control,
 * events, connections and queue administration) is {@link CeleryBase}, in
 * app_base.ts. Creating or importing an app opens no connection; the broker
 * and backend are opened on first use (connections.ts). The options and
 * their resolved form are in settings.ts, the tasks defined in
 * registry.ts. Sending (checking call options, routing signatures,
 * publishing and its retries) is in dispatch.ts, how a call is encoded in
 * send.ts; the worker's publishing hook in publisher.ts; how the app wires
 * these parts to itself in app_parts.ts.
 *
 * @module
 */

import type { PublishTarget } from "../broker/port.ts";
import type { Message, SignatureDict } from "../protocol/message.ts";
import { AsyncResult, type ResultSource } from "./async_result.ts";
import type { AppliedCanvas, CanvasApp, CanvasCall, Signature } from "./canvas/signature.ts";
import type { SignatureOptions } from "./canvas/signature_options.ts";
import { GroupResult } from "./group_result.ts";
import type { CeleryOptions } from "./config.ts";
import { type AppInternals, appInternals, CeleryBase } from "./app_base.ts";
import { brand, isBranded, namedSignature } from "./app_parts.ts";
import { Task } from "./task.ts";
import type {
  ApplyOptions,
  BoundTaskHandler,
  SendManyOptions,
  TaskHandler,
  TaskOptions,
  TaskSender,
} from "./task_options.ts";

/**
 * A Celeriac app: define tasks, send them, read their results.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const r = await add.delay(2, 3);
 * console.log(await r.get({ timeout: 10_000 })); // 5
 * await app.close();
 * ```
 */
export class Celery extends CeleryBase implements TaskSender, ResultSource, CanvasApp {
  readonly #internals: AppInternals = appInternals(this);

  /**
   * Create an app. Nothing connects until a task is sent or a result read.
   *
   * @param options broker, backend and defaults; see {@link CeleryOptions}
   */
  constructor(options: CeleryOptions = {}) {
    super(options);
    brand(this);
  }

  /**
   * Whether a value is a Celeriac app (also across copies of this module).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * Celery.isApp(new Celery({ broker: "kv://:memory:" })); // true
   * ```
   *
   * @param value anything
   * @returns true for an app
   */
  static isApp(value: unknown): value is Celery {
    return isBranded(value);
  }

  /** Registered tasks by name. */
  get tasks(): ReadonlyMap<string, Task<never, unknown>> {
    return this.#internals.registry.tasks;
  }

  /**
   * Define a task served by workers that load this module.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const fetchUrl = app.task("tasks.fetch", { bind: true }, async (ctx, url: string) => {
   *   const res = await fetch(url, { signal: ctx.signal });
   *   return res.status;
   * });
   * ```
   *
   * @param name the task name (what Python calls with `send_task`)
   * @param handler the implementation
   * @returns a typed handle
   */
  task<A extends unknown[], R>(name: string, handler: TaskHandler<A, R>): Task<A, Awaited<R>>;
  /**
   * Define a bound task: the handler receives its {@link TaskContext} first.
   *
   * @param name the task name
   * @param options task options with `bind: true`
   * @param handler the implementation
   * @returns a typed handle
   */
  task<A extends unknown[], R>(
    name: string,
    options: TaskOptions & { bind: true },
    handler: BoundTaskHandler<A, R>,
  ): Task<A, Awaited<R>>;
  /**
   * Define a task with options.
   *
   * @param name the task name
   * @param options task options
   * @param handler the implementation
   * @returns a typed handle
   */
  task<A extends unknown[], R>(
    name: string,
    options: TaskOptions & { bind?: false },
    handler: TaskHandler<A, R>,
  ): Task<A, Awaited<R>>;
  task(
    name: string,
    optionsOrHandler: TaskOptions | ((...args: never[]) => unknown),
    maybeHandler?: (...args: never[]) => unknown,
  ): Task<unknown[], unknown> {
    const annotations = this.#internals.settings.annotations;
    return this.#internals.registry.define(this, name, optionsOrHandler, maybeHandler, annotations);
  }

  /**
   * A typed handle to a task served by another worker (e.g. Python).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const mul = app.remoteTask<[number, number], number>("py.mul");
   * const product = await (await mul.delay(6, 7)).get({ timeout: 10_000 });
   * ```
   *
   * @param name the task name
   * @param options defaults for calls (queue, priority, serializer, time limits)
   * @returns a typed handle
   */
  remoteTask<A extends unknown[] = unknown[], R = unknown>(
    name: string,
    options: Pick<
      TaskOptions,
      "queue" | "priority" | "serializer" | "timeLimit" | "softTimeLimit"
    > = {},
  ): Task<A, R> {
    this.#internals.registry.declareRemote(name);
    return new Task<A, R>(this, name, { ...options });
  }

  /**
   * Names of the tasks declared with {@link remoteTask}: known to the app
   * (the CLI's `result -t NAME` and `call` accept them) but not in
   * {@link tasks}, which holds those with a handler.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "kv://:memory:" });
   * app.remoteTask("py.mul");
   * app.remoteTaskNames.has("py.mul"); // true
   * ```
   */
  get remoteTaskNames(): ReadonlySet<string> {
    return this.#internals.registry.remoteNames;
  }

  /**
   * Send a task by name, with arguments and call options.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const r = await app.sendTask<number>("py.mul", [2, 3], { kwargs: {} });
   * ```
   *
   * @param name the task name
   * @param args positional arguments
   * @param callOptions call options (kwargs, countdown, queue, ...); the route (taskRoutes) fills in what they leave unset
   * @returns the result handle, once the broker has the message
   */
  async sendTask<R = unknown>(
    name: string,
    args: readonly unknown[] = [],
    callOptions: ApplyOptions = {},
  ): Promise<AsyncResult<R>> {
    const { id, queue, ignored } = await this.#internals.dispatch.send(name, args, callOptions);
    return new AsyncResult<R>(id, this, undefined, queue, ignored);
  }

  /**
   * The options a signature is sent with — by a client applying a canvas and
   * by a worker sending a chain's next step or a callback: its own, then its
   * task's queue, priority, time limits and serializer (when the task is
   * defined in this app, as Celery's `Task.apply_async` applies them), then
   * every option its route (`taskRoutes`) gives: queue, exchange, routing
   * key, priority, serializer, headers, …
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({
   *   broker: "redis://127.0.0.1:6379/0",
   *   taskRoutes: { "feeds.*": { queue: "feeds", priority: 9 } },
   * });
   * app.routeSignature("feeds.fetch", [], {}, {}); // { queue: "feeds", priority: 9 }
   * ```
   *
   * @param task the task name
   * @param args positional arguments
   * @param kwargs keyword arguments
   * @param options the signature's options (Celery's names: `queue`, `routing_key`, ...)
   * @returns the options to send with
   */
  routeSignature(
    task: string,
    args: readonly unknown[],
    kwargs: Record<string, unknown>,
    options: Record<string, unknown>,
  ): Record<string, unknown> {
    return this.#internals.dispatch.routeSignature(task, args, kwargs, options);
  }

  /**
   * Send many task calls at once: every message is encoded first, then
   * published as one batch (Redis: variadic LPUSHes of up to 1,000 per
   * queue, pipelined; RabbitMQ:
   * all published back to back, their publisher confirms awaited together;
   * KV: each queue's first message alone, then the rest concurrently).
   * Resolves once the broker has every message. A batch none of whose
   * messages went out because the broker was unreachable is tried again
   * as its first call's `retry` and `retryPolicy` say (else the app's
   * `taskPublishRetryPolicy`). Rejects with the broker's
   * error (or `options.signal`'s reason) when nothing was sent, or with a
   * `BatchSendError` when the batch stopped part way: its `outcomes[i]`
   * tells whether `calls[i]` was sent, not sent (send it again) or may have
   * gone (unknown), and `ids[i]` its task id. A call may name its own
   * task id (`options.taskId`; else a new UUID is made), so that a call sent
   * again keeps the id its caller already knows. Each call is as
   * {@link Celery.sendTask} would send it (routes, ids, parent task), byte
   * for byte; calls in a row with the same task and the same options object
   * are encoded from one template (what they share encoded once).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const results = await app.sendMany([
   *   { name: "tasks.add", args: [1, 2] },
   *   { name: "tasks.add", args: [3, 4], options: { countdown: 10 } },
   * ], { signal: AbortSignal.timeout(5_000) });
   * ```
   *
   * @example Sending again the calls a stopped batch did not send
   * ```ts
   * import { BatchSendError, Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const calls = [1, 2, 3].map((n) => ({
   *   name: "tasks.add",
   *   args: [n, n],
   *   options: { taskId: `add-${n}` }, // ids of the caller's own: the same when sent again
   * }));
   * try {
   *   await app.sendMany(calls);
   * } catch (err) {
   *   if (!(err instanceof BatchSendError)) throw err; // nothing was sent
   *   await app.sendMany(calls.filter((_, i) => err.outcomes[i] === "unsent"));
   * }
   * ```
   *
   * @param calls the calls: task name, positional arguments, call options
   * @param options `signal` stops the batch (see {@link SendManyOptions}); default none
   * @returns a result handle per call, in order
   * @throws {BatchSendError} when the batch stopped after some messages were written
   */
  async sendMany<R = unknown>(
    calls: readonly { name: string; args?: readonly unknown[]; options?: ApplyOptions }[],
    options: SendManyOptions = {},
  ): Promise<AsyncResult<R>[]> {
    const sent = await this.#internals.dispatch.sendMany(calls, options);
    return sent.map(({ id, queue, ignored }) =>
      new AsyncResult<R>(id, this, undefined, queue, ignored)
    );
  }

  /**
   * A signature for a task by name, e.g. one served by Python
   * (`app.signature("py.mul", [2])` is Python's `signature("py.mul", (2,))`).
   *
   * @example
   * ```ts
   * import { Celery, chain } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const mul = app.signature<number>("py.mul", [2], {}, { queue: "py" });
   * const r = await chain(add.s(1, 2), mul).applyAsync();
   * ```
   *
   * @param name the task name
   * @param args partial positional arguments
   * @param kwargs partial keyword arguments
   * @param options execution options
   * @returns the signature
   */
  signature<R = unknown>(
    name: string,
    args: readonly unknown[] = [],
    kwargs: Record<string, unknown> = {},
    options: SignatureOptions = {},
  ): Signature<R> {
    return namedSignature<R>(this, name, args, kwargs, options);
  }

  /**
   * The options a call of task `name` is sent with, as `applyAsync()` and
   * `sendTask()` resolve them: the call's own, then the task's defaults
   * (queue, priority, time limits, serializer, when this app registers the
   * task), then what its route (`taskRoutes`) gives.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "kv://:memory:", taskRoutes: { "py.*": { serializer: "msgpack" } } });
   * app.sendOptions("py.blob", [], {}).serializer; // "msgpack"
   * ```
   *
   * @param name the task name
   * @param args positional arguments (a routing function may read them)
   * @param options the call's options
   * @returns the options to send with
   */
  sendOptions(name: string, args: readonly unknown[], options: ApplyOptions = {}): ApplyOptions {
    return this.#internals.dispatch.sendOptions(name, args, options);
  }

  /**
   * The queue a call of task `name` goes to when the call names none: its
   * route's (`taskRoutes`), the task's `queue` option, else the default
   * queue. A worker sends the chain steps, chord bodies and callbacks that
   * name no queue there, as Celery's worker routes them with `task_routes`.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "kv://:memory:", taskRoutes: { "py.*": "python" } });
   * app.queueFor("py.mul"); // "python"
   * app.queueFor("tasks.add"); // "celery"
   * ```
   *
   * @param name the task name
   * @param args the positional arguments (a routing function may read them)
   * @param kwargs the keyword arguments
   * @returns the queue name
   */
  queueFor(
    name: string,
    args: readonly unknown[] = [],
    kwargs: Record<string, unknown> = {},
  ): string {
    return this.#internals.dispatch.queueFor(name, args, kwargs);
  }

  /**
   * Publish what a signature dict applies to (chain, group, chord, ...);
   * `Signature.applyAsync()` calls this.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const add = app.task("tasks.add", (a: number, b: number) => a + b);
   * const sig = add.s(2, 3);
   * const tree = await app.applyCanvas(sig.toDict());
   * ```
   *
   * @param sig the signature dict
   * @param call extra arguments and execution options
   * @returns the result tree (task ids)
   * @throws {TaskArgumentsError} when a call it sends now does not fit its task's handler here
   *   (nothing is sent)
   * @throws {ChordUnsupportedError} for a chord on a backend that cannot join chords
   */
  applyCanvas(sig: SignatureDict, call: CanvasCall = {}): Promise<AppliedCanvas> {
    return this.#internals.dispatch.applyCanvas(sig, call);
  }

  /**
   * Read a group saved with `GroupResult.save()` (here or by Python).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const groupId = "9f0e5c4a-…"; // a GroupResult's id, saved with save()
   * const g = await app.restoreGroup<number[]>(groupId);
   * if (g) console.log(await g.get({ timeout: 10_000 }));
   * ```
   *
   * @param id the group id
   * @returns the group, or `null` when none is saved under this id
   */
  restoreGroup<T extends unknown[] = unknown[]>(id: string): Promise<GroupResult<T> | null> {
    return GroupResult.restore<T>(id, this);
  }

  /**
   * Publish an encoded message through this app's broker (or the worker's
   * connection, inside a worker), retried while the broker is unreachable
   * as `taskPublishRetryPolicy` says (unless `taskPublishRetry` is false),
   * or as the call's own `retry` and `retryPolicy` say.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * import { encodeTaskMessage } from "@celeriac/celeriac/protocol";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const message = encodeTaskMessage({
   *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {},
   *   now: new Date(), origin: "gen1@host", replyTo: crypto.randomUUID(),
   * });
   * await app.publish(message, { routingKey: "celery" }, { retry: false });
   * ```
   *
   * @param message the message
   * @param target exchange and routing key
   * @param call the call's `retry` and `retryPolicy`; default the app's
   */
  async publish(
    message: Message,
    target: PublishTarget,
    call?: Pick<ApplyOptions, "retry" | "retryPolicy">,
  ): Promise<void> {
    await this.#internals.dispatch.publish(message, target, call);
  }

  /**
   * A result handle for a task id.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const r = app.asyncResult<number>("5c0e4e3a-…");
   * ```
   *
   * @param id the task id
   * @returns the handle
   */
  asyncResult<R = unknown>(id: string): AsyncResult<R> {
    return new AsyncResult<R>(id, this);
  }
}
