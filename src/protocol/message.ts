/**
 * The broker-neutral message shape and the Celery canvas types carried in
 * task bodies.
 *
 * @module
 */

/**
 * AMQP-style message properties. Unknown keys are kept and ignored, as
 * kombu does.
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
 */
export interface Message {
  /** The serialized (and possibly compressed) body. */
  body: Uint8Array;
  /** MIME type of the serialized body. */
  contentType: string;
  /** `utf-8` or `binary`. */
  contentEncoding: string;
  /** Message headers (the task metadata for protocol 2). */
  headers: Record<string, unknown>;
  /** Message properties. */
  properties: MessageProperties;
}

/**
 * A Celery signature as a JSON dict: a task name with partial arguments and
 * execution options (`celery.canvas.Signature`).
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

/** The third element of a protocol-2 body. */
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

/** A decoded protocol-2 body: `[args, kwargs, embed]`. */
export interface TaskBody {
  /** Positional arguments. */
  args: unknown[];
  /** Keyword arguments. */
  kwargs: Record<string, unknown>;
  /** Workflow data (callbacks, errbacks, chain, chord). */
  embed: Embed;
}
