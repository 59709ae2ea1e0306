/**
 * The {@link Celery} app: configuration, the task registry and the
 * producer. Creating or importing an app opens no connection; the broker
 * and backend are opened on first use (connections.ts). The options and
 * their resolved form are in settings.ts, the tasks defined in
 * registry.ts. Sending (checking call options, routing signatures,
 * publishing and its retries) is in dispatch.ts, how a call is encoded in
 * send.ts; the worker's publishing hook in publisher.ts; how the app wires
 * these parts to itself in app_parts.ts.
 *
 * @module
 */

import type { ResultBackend } from "../backend/port.ts";
import type { Broker, PublishTarget } from "../broker/port.ts";
import type { Message, SignatureDict } from "../protocol/message.ts";
import type { ResultTuple } from "../protocol/signature.ts";
import { AsyncResult, type ResultSource } from "./async_result.ts";
import type { CanvasApp, CanvasCall, Signature } from "./canvas/signature.ts";
import type { SignatureOptions } from "./canvas/signature_options.ts";
import { GroupResult } from "./group_result.ts";
import { Control } from "./control.ts";
import { Events } from "./events.ts";
import type { CeleryOptions, ResolvedConfig, UrlSources } from "./config.ts";
import type { OpenOptions } from "./connections.ts";
import { appConnections, appDispatch, brand, isBranded, namedSignature } from "./app_parts.ts";
import { Task } from "./task.ts";
import type {
  ApplyOptions,
  BoundTaskHandler,
  SendManyOptions,
  TaskHandler,
  TaskOptions,
  TaskSender,
} from "./task_options.ts";
import { PUBLISHER, type Publisher, SENT_FROM_TASK, type SentFromTask } from "./publisher.ts";
import { TaskRegistry } from "./registry.ts";
import { AppSettings } from "./settings.ts";
import { type SignalListener, type SignalName, Signals } from "./signals.ts";

/**
 * A Celeriac app: define tasks, send them, read their results.
 *
 * @example
 * ```ts ignore
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const add = app.task("tasks.add", (a: number, b: number) => a + b);
 * const r = await add.delay(2, 3);
 * console.log(await r.get({ timeout: 10_000 })); // 5
 * await app.close();
 * ```
 */
export class Celery implements TaskSender, ResultSource, CanvasApp {
  readonly #settings: AppSettings;
  /**
   * This producer's reply-queue id (Celery's "oid"), written as `reply_to`.
   */
  readonly oid: string = crypto.randomUUID();
  readonly #registry = new TaskRegistry();
  readonly #connections = appConnections(this.oid, () => this.#settings);
  readonly #dispatch = appDispatch(this, () => this.#settings, this.#registry, this.#connections);
  /**
   * Remote control: revoke tasks on every worker.
   *
   * @example
   * ```ts ignore
   * await app.control.revoke(taskId, { terminate: true });
   * ```
   */
  readonly control: Control = new Control(() => this.broker());
  /**
   * Celery events: receive them (`app.events.receive()`), and `task-sent`
   * for each task sent when `taskSendSentEvent` is on.
   *
   * @example
   * ```ts ignore
   * for await (const e of app.events.receive({ signal })) console.log(e.type, e.hostname);
   * ```
   */
  readonly events: Events = new Events(() => this.broker());
  /**
   * The app's signal listeners (see {@link Celery.on}); workers emit
   * through it.
   */
  readonly signals: Signals = new Signals();
  /**
   * Set by a worker inside its Web Workers: publishes through the worker's
   * connection instead of opening one. `undefined` everywhere else.
   */
  [PUBLISHER]: Publisher | undefined;
  /**
   * Set by a worker whose inline pool runs the app's tasks: notes what they
   * send, for their `children`. `undefined` everywhere else.
   */
  [SENT_FROM_TASK]: SentFromTask | undefined;

  /**
   * Create an app. Nothing connects until a task is sent or a result read.
   *
   * @param options broker, backend and defaults; see {@link CeleryOptions}
   */
  constructor(options: CeleryOptions = {}) {
    this.#settings = new AppSettings(options);
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

  /** The configuration, with defaults applied. */
  get config(): ResolvedConfig {
    return this.#settings.config;
  }

  /**
   * Where the broker, backend and beat store URLs came from, in words (the
   * app's option, an environment variable, the default): named by a
   * connection error, so that it says the one place to change.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * new Celery({ broker: "kv://:memory:" }).urlSources.beatStore;
   * // "the broker's URL, as no beat store was given (...); the broker's URL is the app's broker option (...)"
   * ```
   */
  get urlSources(): UrlSources {
    return this.#settings.sources;
  }

  /**
   * Change options before anything connected (the worker's `--broker` and
   * `--backend` flags use this).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery();
   * app.configure({ broker: "redis://127.0.0.1:6379/1" });
   * ```
   *
   * @param options options to override
   * @throws {Error} when the broker or backend is already open
   */
  configure(options: CeleryOptions): void {
    this.#settings.update(options, {
      connected: this.#connections.opened,
      tasksDefined: this.#registry.tasks.size > 0,
    });
  }

  /**
   * Connect a listener to an app-wide signal, Celery's names in camelCase:
   * `taskPrerun`, `taskPostrun`, `taskFailure` (run in the worker where the
   * task runs), `workerReady`, `workerShutdown` (in the worker's main
   * thread). Connect in the module that defines the app, so that the
   * worker's Web Workers, which import it, have the listener too.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * export const app = new Celery({ broker: "kv://:memory:" });
   * app.on("taskFailure", ({ name, id, error }) => {
   *   console.error(`${name}[${id}] failed:`, error);
   * });
   * app.on("workerReady", ({ hostname, queues }) => console.log(hostname, "consumes", queues));
   * ```
   *
   * @param name the signal
   * @param listener called with the signal's payload; may be async
   * @returns a function that disconnects the listener
   */
  on<N extends SignalName>(name: N, listener: SignalListener<N>): () => void {
    return this.signals.connect(name, listener);
  }

  /** Registered tasks by name. */
  get tasks(): ReadonlyMap<string, Task<never, unknown>> {
    return this.#registry.tasks;
  }

  /**
   * Define a task served by workers that load this module.
   *
   * @example
   * ```ts ignore
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
    const annotations = this.#settings.annotations;
    return this.#registry.define(this, name, optionsOrHandler, maybeHandler, annotations);
  }

  /**
   * A typed handle to a task served by another worker (e.g. Python).
   *
   * @example
   * ```ts ignore
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
    return new Task<A, R>(this, name, { ...options });
  }

  /**
   * Send a task by name, with arguments and call options.
   *
   * @example
   * ```ts ignore
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
    const { id, queue } = await this.#dispatch.send(name, args, callOptions);
    return new AsyncResult<R>(id, this, undefined, queue);
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
   * ```ts ignore
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
    return this.#dispatch.routeSignature(task, args, kwargs, options);
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
   * `BatchSendError` naming the task ids sent, not sent and unknown
   * when the batch stopped part way. Each call is as
   * {@link Celery.sendTask} would send it (routes, ids, parent task), byte
   * for byte; calls in a row with the same task and the same options object
   * are encoded from one template (what they share encoded once).
   *
   * @example
   * ```ts ignore
   * const results = await app.sendMany([
   *   { name: "tasks.add", args: [1, 2] },
   *   { name: "tasks.add", args: [3, 4], options: { countdown: 10 } },
   * ], { signal: AbortSignal.timeout(5_000) });
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
    const sent = await this.#dispatch.sendMany(calls, options);
    return sent.map(({ id, queue }) => new AsyncResult<R>(id, this, undefined, queue));
  }

  /**
   * A signature for a task by name, e.g. one served by Python
   * (`app.signature("py.mul", [2])` is Python's `signature("py.mul", (2,))`).
   *
   * @example
   * ```ts ignore
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
    return this.#dispatch.queueFor(name, args, kwargs);
  }

  /**
   * Publish what a signature dict applies to (chain, group, chord, ...);
   * `Signature.applyAsync()` calls this.
   *
   * @example
   * ```ts ignore
   * const tree = await app.applyCanvas(sig.toDict());
   * ```
   *
   * @param sig the signature dict
   * @param call extra arguments and execution options
   * @returns the result tree (task ids)
   * @throws {ChordUnsupportedError} for a chord on a backend that cannot join chords
   */
  applyCanvas(sig: SignatureDict, call: CanvasCall = {}): Promise<ResultTuple> {
    return this.#dispatch.applyCanvas(sig, call);
  }

  /**
   * Read a group saved with `GroupResult.save()` (here or by Python).
   *
   * @example
   * ```ts ignore
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
   * ```ts ignore
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
    await this.#dispatch.publish(message, target, call);
  }

  /**
   * A result handle for a task id.
   *
   * @example
   * ```ts ignore
   * const r = app.asyncResult<number>("5c0e4e3a-…");
   * ```
   *
   * @param id the task id
   * @returns the handle
   */
  asyncResult<R = unknown>(id: string): AsyncResult<R> {
    return new AsyncResult<R>(id, this);
  }

  /**
   * How many messages wait in a queue (not counting ones taken by workers).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "kv://:memory:" });
   * await app.sendTask("tasks.add", [2, 3]);
   * await app.queueDepth(); // 1, in the default queue "celery"
   * await app.close();
   * ```
   *
   * @param queue the queue; default the app's default queue
   * @returns the number of waiting messages
   * @throws {TypeError} for an empty queue name (on every transport)
   */
  async queueDepth(queue?: string): Promise<number> {
    const name = this.#settings.queueArgument(queue, "app.queueDepth()");
    return await (await this.broker()).queueDepth(name);
  }

  /**
   * Delete every message waiting in a queue (Celery's `purge`). Messages
   * already taken by workers are not affected.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "kv://:memory:" });
   * await app.sendTask("tasks.add", [2, 3]);
   * await app.purge("celery"); // 1
   * await app.queueDepth("celery"); // 0
   * await app.close();
   * ```
   *
   * @param queue the queue; default the app's default queue
   * @returns how many messages were deleted
   * @throws {TypeError} for an empty queue name (on every transport)
   */
  async purge(queue?: string): Promise<number> {
    const name = this.#settings.queueArgument(queue, "app.purge()");
    return await (await this.broker()).purge(name);
  }

  /**
   * The app's broker, opened on first use.
   *
   * @example
   * ```ts ignore
   * console.log(await (await app.broker()).queueDepth("celery"));
   * // Give up after 5 s (an open this call started is aborted and closed):
   * await app.broker({ signal: AbortSignal.timeout(5_000) });
   * ```
   *
   * @param options `signal` stops waiting (see {@link OpenOptions})
   * @returns the broker
   */
  broker(options?: OpenOptions): Promise<Broker> {
    return this.#connections.broker(options);
  }

  /**
   * The app's result backend, opened on first use.
   *
   * @example
   * ```ts ignore
   * const meta = await (await app.resultBackend()).get(id);
   * ```
   *
   * @param options `signal` stops waiting (see {@link OpenOptions})
   * @returns the backend
   * @throws {NoResultBackendError} when none is configured (also when the
   *   signal already aborted: the configuration error is reported first)
   */
  resultBackend(options?: OpenOptions): Promise<ResultBackend> {
    return this.#connections.resultBackend(options);
  }

  /**
   * Close the broker and backend connections, if they were opened.
   *
   * @example
   * ```ts ignore
   * await app.close();
   * ```
   */
  async close(): Promise<void> {
    // A publish waiting to retry fails now; the app opens anew on its next use.
    this.#dispatch.abortRetries();
    await this.#connections.close();
  }
}
