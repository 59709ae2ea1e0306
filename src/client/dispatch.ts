/**
 * An app's producer: task calls sent one at a time, as a batch, or as a
 * canvas, through the app's broker (or, inside a worker, the worker's
 * connection), with the templates of `delay()` calls kept between sends.
 * How a call is encoded is in send.ts.
 *
 * @module
 */

import type { ResultBackend } from "../backend/port.ts";
import { BatchPublishError } from "../broker/errors.ts";
import type { Broker, PublishManyOptions, PublishTarget } from "../broker/port.ts";
import type { Message, SignatureDict } from "../protocol/message.ts";
import type { ResultTuple } from "../protocol/signature.ts";
import { publishCanvas } from "./canvas/apply.ts";
import type { AppliedCanvas, CanvasCall } from "./canvas/signature.ts";
import { checkCallOptions } from "./call_option_names.ts";
import { currentTask } from "./current.ts";
import { publishRetrying, publishRetryPolicyOf } from "./publish_retry.ts";
import type { ResolvedConfig } from "./config.ts";
import type { Events } from "./events.ts";
import type { Publisher, SentFromTask } from "./publisher.ts";
import { CALL_DEFAULTS, type CompiledRoutes, routeSignature } from "./routes.ts";
import { BatchSendError } from "./errors.ts";
import { anonymousNodeName } from "./runtime.ts";
import { writesRedisEnvelopes } from "./transports.ts";
import {
  type BatchCall,
  CallEncoders,
  type CallSender,
  encodeCall,
  encodeCalls,
  publishInOrder,
  routeCall,
} from "./send.ts";
import type { Task } from "./task.ts";
import type { ApplyOptions } from "./task_options.ts";

/**
 * What a {@link Dispatch} needs of its app, read at each send (the app's
 * configuration and routes change with `configure()`, its publishing hook
 * is set by a worker).
 *
 * @example
 * ```ts ignore
 * const host: DispatchHost = {
 *   oid: crypto.randomUUID(),
 *   config: () => config,
 *   routes: () => null,
 *   publisher: () => undefined,
 *   sentFromTask: () => undefined,
 *   task: () => undefined,
 *   events: () => events,
 *   broker: () => openBroker(config.broker),
 *   resultBackend: () => openBackend(config.backend!),
 *   openedBackend: () => undefined,
 * };
 * ```
 */
export interface DispatchHost {
  /** The app's reply-queue id, written as `reply_to`. */
  readonly oid: string;
  /** The app's configuration. */
  config(): ResolvedConfig;
  /** The app's compiled task routes, if any. */
  routes(): CompiledRoutes | null;
  /** The worker's publishing hook inside a worker; `undefined` elsewhere. */
  publisher(): Publisher | undefined;
  /** The inline pool's note of what its tasks send, in a worker that has one; else `undefined`. */
  sentFromTask(): SentFromTask | undefined;
  /**
   * A task defined in the app, if any: its options are a canvas's defaults
   * for its sends, its handler checks their arguments.
   */
  task(name: string): Task<never, unknown> | undefined;
  /** The app's events, for `task-sent`. */
  events(): Events;
  /**
   * The app's broker, opened on first use; `signal` stops waiting for it
   * (the app's close ends the open too).
   */
  broker(options?: { signal?: AbortSignal }): Promise<Broker>;
  /** The app's result backend, opened on first use. */
  resultBackend(): Promise<ResultBackend>;
  /** The app's result backend if it is open already (nothing opens it). */
  openedBackend(): ResultBackend | undefined;
}

/**
 * Sends an app's task calls: the bodies of `sendTask()`, `sendMany()` and
 * `applyCanvas()`.
 *
 * @example
 * ```ts ignore
 * const dispatch = new Dispatch(host);
 * const { id, queue } = await dispatch.send("tasks.add", [2, 3], {});
 * ```
 */
export class Dispatch {
  readonly #host: DispatchHost;
  /** The templates of `delay()` calls, kept between sends. */
  readonly #encoders = new CallEncoders();
  #origin: string | null = null;
  #envelopesOf: ResolvedConfig | null = null;
  #envelopes = false;
  /** Aborted by {@link Dispatch.abortRetries}: a publish waiting to retry stops. */
  #closing = new AbortController();

  /** @param host what the app provides */
  constructor(host: DispatchHost) {
    this.#host = host;
  }

  /**
   * Publish an encoded message through the app's broker (or the worker's
   * publishing hook, with a canvas's `children` entry: see
   * {@link Publisher}), retried while the broker is unreachable as the
   * call's `retry` and `retryPolicy` say, else as the app's
   * `taskPublishRetryPolicy` (unless `taskPublishRetry` is false).
   *
   * @param message the message
   * @param target exchange and routing key
   * @param call the call's `retry` and `retryPolicy`; default the app's
   * @param child the canvas's `children` entry, for the publishing hook
   * @param queue the queue it goes to, for the publishing hook
   */
  async publish(
    message: Message,
    target: PublishTarget,
    call?: Pick<ApplyOptions, "retry" | "retryPolicy">,
    child?: ResultTuple | null,
    queue?: string,
  ): Promise<void> {
    const host = this.#host;
    const publisher = host.publisher();
    if (publisher) return await publisher(message, target, child, queue);
    host.sentFromTask()?.(message, child);
    const policy = publishRetryPolicyOf(host.config(), call);
    // The open is retried too: a broker that was down at the first call is no different.
    await publishRetrying(
      async () => await (await host.broker()).publish(message, target),
      policy,
      this.#closing.signal,
    );
  }

  /** Stop the publishes waiting to retry (the app closes); later ones retry anew. */
  abortRetries(): void {
    this.#closing.abort();
    this.#closing = new AbortController();
  }

  /**
   * Send one call (its template reused for frozen options, see
   * {@link CallEncoders}), then its `task-sent` event when configured.
   *
   * @param name the task name
   * @param args positional arguments
   * @param callOptions the call's options
   * @returns the task id, the queue it went to and whether it was sent with `ignoreResult`,
   *   once the broker has the message
   * @throws {TypeError} for an unknown call option or one of the wrong type
   */
  async send(
    name: string,
    args: readonly unknown[],
    callOptions: ApplyOptions,
  ): Promise<{ id: string; queue: string; ignored: boolean }> {
    // Task.delay() passes its task's frozen defaults: only call option names, no check needed.
    if (!Object.isFrozen(callOptions)) checkCallOptions(callOptions, name);
    const sender = this.#sender();
    const encode = this.#encoders.for(sender, name, callOptions);
    const { id, publication, rpc, results, ignored, queue } = encode
      ? encode(args)
      : await encodeCall(sender, name, args, callOptions);
    if (rpc) await this.#listenForReplies();
    else if (results) this.#expect(id);
    await this.publish(publication.message, publication.target, callOptions, undefined, queue);
    if (sender.config.taskSendSentEvent && !sender.inWorker) {
      await this.#host.events().sent(publication.message, publication.target, queue);
    }
    return { id, queue, ignored };
  }

  /**
   * Send calls as one batch: all encoded first (see {@link encodeCalls}),
   * then published with the broker's batch publish when it has one.
   *
   * @param calls the calls
   * @param options `signal`: stops the batch (see `SendManyOptions`); default none
   * @returns the task ids, their queues and whether each was sent with `ignoreResult`, in
   *   order, once the broker has every message
   * @throws the signal's reason, or the broker's error, when nothing was sent
   * @throws {BatchSendError} when the batch stopped after some messages were written
   * @throws {TypeError} for an unknown call option or one of the wrong type (nothing is sent)
   */
  async sendMany(
    calls: readonly BatchCall[],
    options: PublishManyOptions = {},
  ): Promise<{ id: string; queue: string; ignored: boolean }[]> {
    let checked: ApplyOptions | undefined; // delayMany() shares one object between its calls
    for (const call of calls) {
      if (call.options !== checked) checkCallOptions(call.options, call.name);
      checked = call.options;
    }
    const signal = options.signal;
    signal?.throwIfAborted();
    const sender = this.#sender();
    const policy = publishRetryPolicyOf(sender.config, calls[0]?.options);
    const encoded = await encodeCalls(sender, calls);
    if (encoded.some((e) => e.rpc)) await this.#listenForReplies();
    const batch = encoded.map((e) => e.publication);
    const host = this.#host;
    try {
      if (sender.inWorker) {
        const queues = new Map(encoded.map((e) => [e.publication.message, e.queue]));
        await publishInOrder(
          batch,
          (m, t) => this.publish(m, t, undefined, undefined, queues.get(m)),
          options,
        );
      } else {
        const note = host.sentFromTask();
        if (note) { for (const p of batch) note(p.message); }
        // A batch none of whose messages went out is tried again, as one message is.
        await publishRetrying(
          async () => {
            const broker = await host.broker({ signal });
            signal?.throwIfAborted();
            await (broker.publishMany
              ? broker.publishMany(batch, options)
              : publishInOrder(batch, (m, t) => broker.publish(m, t), options));
          },
          policy,
          signal ? AbortSignal.any([this.#closing.signal, signal]) : this.#closing.signal,
        );
      }
    } catch (err) {
      if (!(err instanceof BatchPublishError)) throw signal?.aborted ? signal.reason : err;
      throw new BatchSendError(encoded.map((e) => e.id), err.outcomes, err.cause);
    }
    if (sender.config.taskSendSentEvent && !sender.inWorker) {
      const events = this.#host.events();
      for (const e of encoded) {
        await events.sent(e.publication.message, e.publication.target, e.queue);
      }
    }
    return encoded.map((e) => ({ id: e.id, queue: e.queue, ignored: e.ignored }));
  }

  /**
   * The queue of a call that names none: its route's (`taskRoutes`), its
   * task's `queue` option, else the default queue.
   *
   * @param task the task name
   * @param args the positional arguments (a routing function may read them)
   * @param kwargs the keyword arguments
   * @returns the queue name
   */
  queueFor(task: string, args: readonly unknown[], kwargs: Record<string, unknown>): string {
    const host = this.#host;
    return routeCall(host.routes(), task, args, { kwargs, queue: host.task(task)?.options.queue })
      .queue ??
      host.config().defaultQueue;
  }

  /**
   * The options a call of task `name` is sent with, as `applyAsync()` /
   * `sendTask()` resolve them: the call's own, then the task's defaults
   * (when this app registers it), then its route's (`taskRoutes`).
   *
   * @param name the task name
   * @param args positional arguments
   * @param options the call's options
   * @returns the options to send with
   */
  sendOptions(name: string, args: readonly unknown[], options: ApplyOptions): ApplyOptions {
    const host = this.#host;
    const task = host.task(name)?.options;
    const merged: Record<string, unknown> = {};
    for (const [k] of CALL_DEFAULTS) if (task?.[k] !== undefined) merged[k] = task[k];
    for (const [k, v] of Object.entries(options)) if (v !== undefined) merged[k] = v;
    return routeCall(host.routes(), name, args, merged as ApplyOptions);
  }

  /**
   * The options a signature is sent with: its own, then its task's
   * defaults, then its route's (see `routeSignature` in routes.ts).
   *
   * @param task the task name
   * @param args positional arguments
   * @param kwargs keyword arguments
   * @param options the signature's options (Celery's names)
   * @returns the options to send with
   */
  routeSignature(
    task: string,
    args: readonly unknown[],
    kwargs: Record<string, unknown>,
    options: Record<string, unknown>,
  ): Record<string, unknown> {
    const host = this.#host;
    return routeSignature(host.routes(), host.task(task)?.options, task, args, kwargs, options);
  }

  /**
   * Publish what a signature dict applies to (chain, group, chord, ...).
   *
   * @param sig the signature dict
   * @param call extra arguments and execution options
   * @returns the result tree (task ids)
   * @throws {TaskArgumentsError} when a call it sends now does not fit its task's handler here
   */
  applyCanvas(sig: SignatureDict, call: CanvasCall): Promise<AppliedCanvas> {
    const host = this.#host;
    return publishCanvas(
      {
        oid: host.oid,
        origin: () => this.#originName(),
        route: (task, args, kwargs, options) => this.routeSignature(task, args, kwargs, options),
        defaultQueue: host.config().defaultQueue,
        serializer: host.config().taskSerializer,
        compression: host.config().taskCompression ?? null,
        groupIndex: "chord",
        task: (name) => host.task(name),
        publish: async (m, t, child, queue) => {
          await this.publish(m, t, undefined, child, queue);
          // Each message, as Celery's apply_async of each member; in a Web Worker, the worker's.
          if (host.config().taskSendSentEvent && !host.publisher()) {
            await host.events().sent(m, t, queue);
          }
        },
        backend: () => host.config().backend === null ? null : host.resultBackend(),
        prepare: async () => {
          if (host.config().backend?.startsWith("rpc:")) await this.#listenForReplies();
        },
      },
      sig,
      call,
    );
  }

  /**
   * Make the rpc:// backend read the app's reply queue before a send, unless
   * a task the worker runs sends (inside a Web Worker, or on the inline
   * pool's thread): nothing reads those replies, as a task may not wait for
   * a result, so a worker reading them kept each in memory.
   */
  async #listenForReplies(): Promise<void> {
    const host = this.#host;
    if (host.publisher() || (host.sentFromTask() && currentTask.getStore())) return;
    await (await host.resultBackend()).prepare?.();
  }

  /**
   * Tell the app's backend, if open, that `taskId` is about to be sent
   * (Celery's `on_task_call`): a Redis backend subscribes to its result
   * with the send once a caller has waited. Not for what a task the worker
   * runs on its own thread sends: a task may not wait for a result.
   */
  #expect(taskId: string): void {
    const host = this.#host;
    if (host.sentFromTask() && currentTask.getStore()) return;
    host.openedBackend()?.expect?.(taskId);
  }

  /** The node name written as `origin`, made on first use. */
  #originName(): string {
    return this.#origin ??= anonymousNodeName();
  }

  /** Whether the app's broker writes Redis envelopes, kept per configuration. */
  #redisEnvelopes(): boolean {
    const config = this.#host.config();
    if (this.#envelopesOf !== config) {
      this.#envelopes = writesRedisEnvelopes(config.broker);
      this.#envelopesOf = config;
    }
    return this.#envelopes;
  }

  /** What encodeCall() needs of the app. */
  #sender(): CallSender {
    const routes = this.#host.routes();
    return {
      config: this.#host.config(),
      oid: this.#host.oid,
      inWorker: !!this.#host.publisher(),
      redisEnvelopes: this.#redisEnvelopes(),
      routed: routes !== null,
      origin: () => this.#originName(),
      route: (name, args, options) => routeCall(routes, name, args, options),
    };
  }
}
