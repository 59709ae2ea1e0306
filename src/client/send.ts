/**
 * Sending task calls, apart from the app that holds the connections: a
 * call's options merged over its route, the call encoded as a Celery task
 * message (loading the codecs it needs), and a batch published in order on
 * a broker without a batch publish.
 *
 * @module
 */

import { batchFailure, type PublishOutcome } from "../broker/errors.ts";
import type { Publication, PublishManyOptions, PublishTarget } from "../broker/port.ts";
import { loadCodecs } from "../protocol/codecs.ts";
import type { Message } from "../protocol/message.ts";
import { checkTaskFields } from "../protocol/task_fields.ts";
import { encodeTaskMessage } from "../protocol/task_message.ts";
import { taskTarget } from "../protocol/task_target.ts";
import { TaskMessageTemplate } from "../protocol/task_template.ts";
import type { ResolvedConfig } from "./config.ts";
import { currentTask } from "./current.ts";
import { warnLoneRoutingKey } from "./lone_routing_key.ts";
import type { CompiledRoutes } from "./routes.ts";
import type { ApplyOptions } from "./task_options.ts";

/**
 * The call's options over its route's (Celery's task_routes): set values win.
 * A route's `ignoreResult` is left out, as Celery's router leaves it.
 *
 * @example
 * ```ts
 * import { compileRoutes } from "./routes.ts";
 * import { routeCall } from "./send.ts";
 * const routes = compileRoutes({ "tasks.*": { queue: "tasks", priority: 5 } });
 * routeCall(routes, "tasks.add", [], { priority: 1 }); // { queue: "tasks", priority: 1 }
 * ```
 *
 * @param routes the app's compiled routes, if any
 * @param name the task name
 * @param args the positional arguments
 * @param options the call's options
 * @returns the merged options
 */
export function routeCall(
  routes: CompiledRoutes | null,
  name: string,
  args: readonly unknown[],
  options: ApplyOptions,
): ApplyOptions {
  const route = routes?.(name, args, options.kwargs ?? {}, options);
  if (!route) return options;
  // As Celery 5.2.6's send_task, which takes ignore_result from the call before routing: a
  // route's is not applied (its AsyncResult is not ignored, the worker stores the result).
  delete route.ignoreResult;
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (route as Record<string, unknown>)[key] = value;
  }
  return route;
}

/**
 * What {@link encodeCall} needs of the app.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const sender: CallSender = {
 *   config: app.config,
 *   oid: app.oid,
 *   origin: () => "gen1234@host",
 *   inWorker: false,
 *   redisEnvelopes: true,
 *   routed: false,
 *   route: (name, args, options) => routeCall(null, name, args, options),
 * };
 * ```
 */
export interface CallSender {
  /** The app's configuration. */
  readonly config: ResolvedConfig;
  /** The app's reply-queue id, written as `reply_to`. */
  readonly oid: string;
  /** Whether the app sends through a worker's connection (no rpc:// listening then). */
  readonly inWorker: boolean;
  /** The node name written as `origin`. */
  origin(): string;
  /** Whether the broker writes Redis envelopes: then templates prewrite their heads. */
  readonly redisEnvelopes: boolean;
  /** Whether the app has task routes: then {@link encodeCalls} routes each call on its own. */
  readonly routed: boolean;
  /** The call's options over its route's. */
  route(name: string, args: readonly unknown[], options: ApplyOptions): ApplyOptions;
}

/**
 * One call, encoded.
 *
 * @example
 * ```ts ignore
 * const { id, publication } = await encodeCall(sender, "tasks.add", [2, 3], {});
 * ```
 */
export interface EncodedCall {
  /** The task id. */
  id: string;
  /** The message and where it goes. */
  publication: Publication;
  /** Whether the rpc:// backend must listen before the message goes. */
  rpc: boolean;
  /** Whether the sender may wait for its result (a client's send, results not ignored). */
  results: boolean;
  /** Whether the call was sent with `ignoreResult`: no result will be stored. */
  ignored: boolean;
  /** The queue, for the `task-sent` event. */
  queue: string;
}

/**
 * Encode one call as `sendTask()` sends it: routed, with a new task id
 * unless one is given, the parent task (when sent from a task) as parent
 * and root.
 *
 * @example
 * ```ts ignore
 * const encoded = await encodeCall(sender, "tasks.add", [2, 3], { countdown: 10 });
 * await broker.publish(encoded.publication.message, encoded.publication.target);
 * ```
 *
 * @param sender what the app provides
 * @param name the task name
 * @param args positional arguments
 * @param callOptions the call's options
 * @returns the encoded call
 */
export async function encodeCall(
  sender: CallSender,
  name: string,
  args: readonly unknown[],
  callOptions: ApplyOptions,
): Promise<EncodedCall> {
  const config = sender.config;
  const options = sender.route(name, args, callOptions);
  const id = options.taskId ?? crypto.randomUUID();
  const serializer = options.serializer ?? config.taskSerializer;
  const compression = options.compression ?? config.taskCompression;
  if (serializer !== "json" || compression) {
    await loadCodecs({ msgpack: serializer === "msgpack", compression: !!compression });
  }
  const queue = options.queue ?? config.defaultQueue;
  const message = encodeTaskMessage({
    ...callFields(sender, name, options),
    id,
    args,
    now: new Date(),
    serializer,
    compression,
  });
  if (options.routingKey && !options.exchange) warnLoneRoutingKey(options.routingKey, queue);
  const target = taskTarget(queue, options.exchange, options.routingKey);
  const ignored = options.ignoreResult === true;
  const results = !ignored && !sender.inWorker;
  const rpc = results && !!config.backend?.startsWith("rpc:");
  return { id, publication: { message, target }, rpc, results, ignored, queue };
}

/**
 * The fields of a task message that come from the call's options (checked
 * first: task_fields.ts), the sender and the running task (parent and
 * root): all but the id, the arguments, the time and the codecs.
 */
function callFields(sender: CallSender, name: string, options: ApplyOptions) {
  checkTaskFields(options, name);
  const parent = currentTask.getStore();
  return {
    task: name,
    kwargs: options.kwargs ?? {},
    eta: options.eta,
    countdown: options.countdown,
    expires: options.expires,
    origin: sender.origin(),
    replyTo: sender.oid,
    priority: options.priority,
    timeLimit: options.timeLimit,
    softTimeLimit: options.softTimeLimit,
    rootId: parent?.rootId,
    parentId: parent?.id,
    shadow: options.shadow,
    ignoreResult: options.ignoreResult,
    headers: options.headers,
  };
}

/**
 * One call of a batch: task name, positional arguments, call options.
 *
 * @example
 * ```ts
 * const call: BatchCall = { name: "tasks.add", args: [1, 2], options: { queue: "math" } };
 * ```
 */
export interface BatchCall {
  /** The task name. */
  name: string;
  /** Positional arguments; default none. */
  args?: readonly unknown[];
  /** The call's options; default none. */
  options?: ApplyOptions;
}

const NO_OPTIONS: ApplyOptions = Object.freeze({});

/**
 * Encode the calls of a batch, each as {@link encodeCall} encodes it. Calls
 * in a row (two or more) with the same task and the same options object
 * (what `delayMany` sends) share one {@link TaskMessageTemplate}: what they
 * share is encoded once. Calls with task routes (which may route on the
 * arguments), a task id, times, msgpack or compression are encoded one by
 * one.
 *
 * @example
 * ```ts ignore
 * const shared = { queue: "math" };
 * const encoded = await encodeCalls(sender, [
 *   { name: "tasks.add", args: [1, 2], options: shared },
 *   { name: "tasks.add", args: [3, 4], options: shared },
 * ]);
 * ```
 *
 * @param sender what the app provides
 * @param calls the calls
 * @returns the encoded calls, in order
 */
export async function encodeCalls(
  sender: CallSender,
  calls: readonly BatchCall[],
): Promise<EncodedCall[]> {
  const out = new Array<EncodedCall>(calls.length);
  let last: { name: string; options: ApplyOptions; encode: CallEncoder | null } | null = null;
  for (let i = 0; i < calls.length; i++) {
    const name = calls[i].name;
    const args = calls[i].args ?? [];
    const options = calls[i].options ?? NO_OPTIONS;
    if (last === null || last.name !== name || last.options !== options) {
      // A template only for a run of calls: one alone is cheaper to encode on its own.
      const next = calls[i + 1];
      const run: boolean = next !== undefined && next.name === name &&
        (next.options ?? NO_OPTIONS) === options;
      last = {
        name,
        options,
        encode: run && !sender.routed ? callEncoder(sender, name, options) : null,
      };
    }
    out[i] = last.encode ? last.encode(args) : await encodeCall(sender, name, args, options);
  }
  return out;
}

/** Encodes one call of a template's task and options. */
type CallEncoder = (args: readonly unknown[]) => EncodedCall;

/**
 * Encodes calls of `name` with `options` from one template; null when they
 * cannot share one. Outside a worker (no publisher hook: the messages go
 * straight to this process's broker) the template packs bodies and
 * prewrites envelopes, and the calls share one frozen target.
 */
function callEncoder(sender: CallSender, name: string, options: ApplyOptions): CallEncoder | null {
  if (options.taskId !== undefined) return null;
  const config = sender.config;
  const direct = !sender.inWorker;
  const template = TaskMessageTemplate.of({
    ...callFields(sender, name, options),
    serializer: options.serializer ?? config.taskSerializer,
    compression: options.compression ?? config.taskCompression,
  }, { direct, envelope: sender.redisEnvelopes });
  if (!template) return null;
  const queue = options.queue ?? config.defaultQueue;
  if (options.routingKey && !options.exchange) warnLoneRoutingKey(options.routingKey, queue);
  const { exchange, routingKey } = taskTarget(queue, options.exchange, options.routingKey);
  const shared = Object.freeze({ exchange, routingKey });
  const ignored = options.ignoreResult === true;
  const results = !ignored && direct;
  const rpc = results && !!config.backend?.startsWith("rpc:");
  return (args) => {
    const id = crypto.randomUUID();
    const target = direct ? shared : { exchange, routingKey };
    const publication = { message: template.encode(id, args), target };
    return { id, publication, rpc, results, ignored, queue };
  };
}

interface CachedEncoder {
  name: string;
  config: ResolvedConfig;
  inWorker: boolean;
  /** Undefined until the options object comes a second time. */
  encode?: CallEncoder | null;
}

/**
 * The templates of single sends, kept between calls: `delay()` passes the
 * same frozen options object (the task's defaults) each time, so its
 * calls share a template as a batch's do. Kept per options object, task,
 * configuration and publisher hook, from the second call with the object
 * on (an object used once costs no template); only frozen options without
 * `kwargs` or `headers` (whose objects could change between calls), and
 * not inside a running task (its parent ids change with every run).
 *
 * @example
 * ```ts ignore
 * const encoders = new CallEncoders();
 * const encode = encoders.for(sender, "tasks.add", options);
 * const encoded = encode ? encode([2, 3]) : await encodeCall(sender, "tasks.add", [2, 3], options);
 * ```
 */
export class CallEncoders {
  #entries = new WeakMap<ApplyOptions, CachedEncoder>();

  /**
   * The encoder for calls of `name` with `options`, or null: encode the
   * call with {@link encodeCall} then.
   *
   * @param sender what the app provides
   * @param name the task name
   * @param options the call's options
   * @returns the encoder, or null
   */
  for(sender: CallSender, name: string, options: ApplyOptions): CallEncoder | null {
    if (
      sender.routed || !Object.isFrozen(options) || options.kwargs !== undefined ||
      options.headers !== undefined || currentTask.getStore() !== undefined
    ) {
      return null;
    }
    const e = this.#entries.get(options);
    if (!e || e.name !== name || e.config !== sender.config || e.inWorker !== sender.inWorker) {
      this.#entries.set(options, { name, config: sender.config, inWorker: sender.inWorker });
      return null;
    }
    return e.encode === undefined ? e.encode = callEncoder(sender, name, options) : e.encode;
  }
}

/**
 * Publish a batch one message at a time, in order per target: the first
 * message of each target goes alone (it connects and declares), then the
 * rest together. `signal` stops it between the first messages and before
 * the rest (which are written together). Rejects as `Broker.publishMany`
 * does: with the cause itself when nothing went out, else with a
 * `BatchPublishError` telling each message's outcome (a publish that
 * rejected counts as unknown: RabbitMQ or KV may have taken it before the
 * connection dropped).
 *
 * @example
 * ```ts ignore
 * await publishInOrder(batch, (m, t) => broker.publish(m, t), { signal });
 * ```
 *
 * @param batch the messages and their targets
 * @param publish publishes one message
 * @param options `signal`: stops the batch; default none
 */
export async function publishInOrder(
  batch: readonly Publication[],
  publish: (message: Message, target: PublishTarget) => Promise<void>,
  options: PublishManyOptions = {},
): Promise<void> {
  const signal = options.signal;
  const outcomes = new Array<PublishOutcome>(batch.length).fill("unsent");
  const seen = new Set<string>();
  const firsts: number[] = [];
  const rest: number[] = [];
  batch.forEach((p, i) => {
    const key = `${p.target.exchange ?? ""}\u0000${p.target.routingKey}`;
    if (seen.has(key)) rest.push(i);
    else {
      seen.add(key);
      firsts.push(i);
    }
  });
  for (const i of firsts) {
    try {
      signal?.throwIfAborted();
      outcomes[i] = "unknown";
      await publish(batch[i].message, batch[i].target);
      outcomes[i] = "sent";
    } catch (err) {
      throw batchFailure(outcomes, err);
    }
  }
  if (signal?.aborted) throw batchFailure(outcomes, signal.reason);
  const settled = await Promise.allSettled(rest.map(async (i) => {
    outcomes[i] = "unknown";
    await publish(batch[i].message, batch[i].target);
    outcomes[i] = "sent";
  }));
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw batchFailure(outcomes, failed.reason);
}
