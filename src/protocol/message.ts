/**
 * The broker-neutral message shape and the Celery canvas types carried in
 * task bodies.
 *
 * @module
 */

/**
 * AMQP-style message properties. Unknown keys are kept and ignored, as
 * kombu does.
 *
 * @example Reading the properties of a task message
 * ```ts
 * import { encodeTaskMessage, type MessageProperties } from "@celeriac/celeriac/protocol";
 * const id = crypto.randomUUID();
 * const message = encodeTaskMessage({
 *   task: "tasks.add", id, args: [2, 3], kwargs: {}, expires: 60,
 *   now: new Date(), origin: "gen1@host", replyTo: crypto.randomUUID(), priority: 3,
 * });
 * const props: MessageProperties = message.properties;
 * props.correlation_id === id; // true
 * props.expiration; // "60000" (milliseconds)
 * props.priority; // 3
 * ```
 */
export interface MessageProperties {
  /** For task messages, the task id (the rpc backend routes replies by it). */
  correlation_id?: string;
  /** Reply queue of the producer (the rpc backend's result queue). */
  reply_to?: string;
  /** 2 = persistent (the task default), 1 = transient. */
  delivery_mode?: number;
  /** Message priority (0–9 on Redis, where 0 is the most urgent). */
  priority?: number;
  /** AMQP per-message TTL: remaining lifetime in milliseconds, as a decimal string. */
  expiration?: string;
  /** Any other property. */
  [key: string]: unknown;
}

/**
 * A message as every transport carries it: serialized body, content type,
 * headers and properties.
 *
 * @example A hand-built task message
 * ```ts
 * import { decodeTaskHeaders, type Message, pyJsonDumps } from "@celeriac/celeriac/protocol";
 * // encodeTaskMessage() builds these; this is the shape every transport carries.
 * const message: Message = {
 *   body: new TextEncoder().encode(pyJsonDumps([[2, 3], {}, {}])),
 *   contentType: "application/json",
 *   contentEncoding: "utf-8",
 *   headers: { lang: "py", task: "tasks.add", id: crypto.randomUUID() },
 *   properties: { delivery_mode: 2, priority: 0 },
 * };
 * decodeTaskHeaders(message).task; // "tasks.add"
 * ```
 */
export interface Message {
  /** The serialized (and possibly compressed) body. */
  body: Uint8Array;
  /** MIME type of the serialized body; "" when the message carries none. */
  contentType: string;
  /** `utf-8` or `binary`. */
  contentEncoding: string;
  /** Message headers (the task metadata for protocol 2). */
  headers: Record<string, unknown>;
  /** Message properties. */
  properties: MessageProperties;
  /**
   * Set by a transport that received a message it could not fully decode
   * (a body that is not base64, headers past the limits) but whose task id
   * it could read: why. The body is then empty and the headers hold only
   * `id` and `task`; {@link decodeTaskHeaders} refuses it, so the worker
   * parks it and stores a FAILURE for that id. On RabbitMQ, a headers
   * table that cannot be decoded also sets it: the headers are then empty
   * and the body is kept, so the parked copy still carries it.
   */
  undecodable?: string;
}

/**
 * A Celery signature as a JSON dict: a task name with partial arguments and
 * execution options (`celery.canvas.Signature`).
 *
 * @example A callback run with the task's result
 * ```ts
 * import { encodeTaskMessage, type SignatureDict } from "@celeriac/celeriac/protocol";
 * // As Python's tasks.notify.s("admin@example.com"): receives the result first.
 * const notify: SignatureDict = {
 *   task: "tasks.notify",
 *   args: ["admin@example.com"],
 *   kwargs: {},
 *   options: {},
 *   subtask_type: null,
 *   immutable: false,
 * };
 * const message = encodeTaskMessage({
 *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {},
 *   embed: { callbacks: [notify] }, now: new Date(), origin: "gen1@host", replyTo: "r",
 * });
 * ```
 */
export interface SignatureDict {
  /** Task name (or `celery.chain` / `celery.group` / `celery.chord`). */
  task: string;
  /** Partial positional arguments. */
  args: unknown[];
  /** Partial keyword arguments. */
  kwargs: Record<string, unknown>;
  /** Execution options (`task_id`, `queue`, `link`, ...). */
  options: Record<string, unknown>;
  /** `null` for a plain task, else the composite kind. */
  subtask_type: string | null;
  /** True for `.si()` signatures: the parent result is not prepended. */
  immutable: boolean;
  /** Any other field. */
  [key: string]: unknown;
}

/**
 * The third element of a protocol-2 body.
 *
 * @example Workflow data of a message
 * ```ts
 * import { decodeTaskBody, type Embed, encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * const onError = {
 *   task: "tasks.alert", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: true,
 * };
 * const embed: Embed = { callbacks: null, errbacks: [onError], chain: null, chord: null };
 * const id = crypto.randomUUID();
 * const message = encodeTaskMessage({
 *   task: "tasks.add", id, args: [2, 3], kwargs: {}, embed,
 *   now: new Date(), origin: "gen1@host", replyTo: "r",
 * });
 * decodeTaskBody(message, id).embed.errbacks?.[0].task; // "tasks.alert"
 * ```
 */
export interface Embed {
  /** Signatures to apply on success (`link`). */
  callbacks: SignatureDict[] | null;
  /** Signatures to apply on failure (`link_error`). */
  errbacks: SignatureDict[] | null;
  /** Remaining chain steps, in reverse order (the next one is last). */
  chain: SignatureDict[] | null;
  /** The chord body, on chord header members. */
  chord: SignatureDict | null;
}

/**
 * A decoded protocol-2 body: `[args, kwargs, embed]`.
 *
 * @example Decoding a task body
 * ```ts
 * import { decodeTaskBody, encodeTaskMessage, type TaskBody } from "@celeriac/celeriac/protocol";
 * const id = crypto.randomUUID();
 * const message = encodeTaskMessage({
 *   task: "tasks.add", id, args: [2, 3], kwargs: { round: true },
 *   now: new Date(), origin: "gen1@host", replyTo: "r",
 * });
 * const body: TaskBody = decodeTaskBody(message, id);
 * body.args; // [2, 3]
 * body.kwargs; // { round: true }
 * body.embed.chain; // null
 * ```
 */
export interface TaskBody {
  /** Positional arguments. */
  args: unknown[];
  /** Keyword arguments. */
  kwargs: Record<string, unknown>;
  /** Workflow data (callbacks, errbacks, chain, chord). */
  embed: Embed;
}
