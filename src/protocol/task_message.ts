/**
 * Build protocol-2 task messages exactly as Celery 5.2 does.
 *
 * @module
 */

import { rerootEncodeError } from "./encodable.ts";
import { loadedCompression } from "./codecs.ts";
import { compressionMimeType, type CompressionName } from "./compression_names.ts";
import type { Embed, Message } from "./message.ts";
import { argsRepr, kwargsRepr } from "./repr.ts";
import { serialize, type SerializerName } from "./serializers.ts";
import { parsePyDate, pyIsoFormat } from "./time.ts";

/**
 * Everything that goes into one task message. Times are resolved by the caller.
 *
 * @example A delayed, expiring call with custom headers
 * ```ts
 * import { encodeTaskMessage, type TaskMessageInput } from "@celeriac/celeriac/protocol";
 * const input: TaskMessageInput = {
 *   task: "reports.build",
 *   id: crypto.randomUUID(),
 *   args: [2024],
 *   kwargs: { format: "pdf" },
 *   now: new Date(),
 *   countdown: 60, // eta header: a minute from `now`
 *   expires: 3600,
 *   origin: "gen1@host",
 *   replyTo: crypto.randomUUID(),
 *   priority: 3,
 *   headers: { tenant: "acme" },
 * };
 * const message = encodeTaskMessage(input);
 * message.headers.kwargsrepr; // "{'format': 'pdf'}"
 * ```
 */
export interface TaskMessageInput {
  /** Registered task name. */
  task: string;
  /** Task id (a UUID). */
  id: string;
  /** Positional arguments. */
  args: readonly unknown[];
  /** Keyword arguments. */
  kwargs: Readonly<Record<string, unknown>>;
  /** Callbacks, errbacks, chain and chord. Missing fields are `null`. */
  embed?: Partial<Embed>;
  /** The current time: `countdown` and numeric `expires` count from it. */
  now: Date;
  /** Earliest run time. A string is sent verbatim. */
  eta?: Date | string | null;
  /** Seconds from `now` until the earliest run time; overrides `eta`. */
  countdown?: number | null;
  /** Expiry: seconds from `now`, an instant, or an ISO string sent verbatim. */
  expires?: number | Date | string | null;
  /** Sender node name (`origin` header), e.g. `gen123@host`. */
  origin: string;
  /** Reply queue of this producer (`reply_to` property). */
  replyTo: string;
  /** Message priority; default 0. */
  priority?: number;
  /** Group id, for group and chord members. */
  group?: string | null;
  /** Position inside a chord header. */
  groupIndex?: number | null;
  /** Retry count; default 0. */
  retries?: number;
  /** Hard time limit in seconds. */
  timeLimit?: number | null;
  /** Soft time limit in seconds. */
  softTimeLimit?: number | null;
  /** Workflow root id; defaults to `id`. */
  rootId?: string | null;
  /** Id of the task that sent this one. */
  parentId?: string | null;
  /** Display name for logs. */
  shadow?: string | null;
  /** Ask the worker not to store a success result. */
  ignoreResult?: boolean;
  /** Extra headers, merged after the standard ones. */
  headers?: Readonly<Record<string, unknown>>;
  /** Body serializer; default `json`. */
  serializer?: SerializerName;
  /** Body compression; default none. */
  compression?: CompressionName | null;
  /** 2 = persistent (default), 1 = transient. */
  deliveryMode?: number;
}

const EMPTY_EMBED_KEYS = ["callbacks", "errbacks", "chain", "chord"] as const;

function embedOf(e: Partial<Embed> | undefined): Embed {
  const out = {} as Record<string, unknown>;
  for (const k of EMPTY_EMBED_KEYS) out[k] = e?.[k] ?? null;
  return out as unknown as Embed;
}

function isoOrNull(v: Date | string | null | undefined): string | null {
  if (v === null || v === undefined) return null;
  return typeof v === "string" ? v : pyIsoFormat(v, "+00:00");
}

function resolveExpires(input: TaskMessageInput): { header: string | null; ms: number | null } {
  const e = input.expires;
  if (e === null || e === undefined) return { header: null, ms: null };
  if (typeof e === "number") {
    return {
      header: pyIsoFormat(new Date(input.now.getTime() + e * 1000), "+00:00"),
      ms: e * 1000,
    };
  }
  if (typeof e === "string") {
    // A string without offset is UTC for Celery (not local time, as Date.parse reads it).
    const t = parsePyDate(e).getTime();
    return { header: e, ms: Number.isFinite(t) ? t - input.now.getTime() : null };
  }
  return { header: pyIsoFormat(e, "+00:00"), ms: e.getTime() - input.now.getTime() };
}

/**
 * Build a protocol-2 task message: the 16 standard headers in Celery's
 * order, then user headers; body `[args, kwargs, embed]`; properties
 * `correlation_id`, `reply_to`, `delivery_mode`, `expiration` (when expiring)
 * and `priority`.
 *
 * @example
 * ```ts
 * import { encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * const msg = encodeTaskMessage({
 *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {},
 *   now: new Date(), origin: "gen1@host", replyTo: crypto.randomUUID(),
 * });
 * // msg.headers.task === "tasks.add"; msg.headers.argsrepr === "(2, 3)"
 * ```
 *
 * @param input the task call
 * @returns the message, ready for any transport
 */
export function encodeTaskMessage(input: TaskMessageInput): Message {
  if (typeof input.task !== "string" || input.task === "") {
    throw new TypeError("A task message needs a non-empty task name");
  }
  if (!Array.isArray(input.args)) {
    throw new TypeError(`Task args must be an array, got ${typeof input.args}`);
  }
  if (input.kwargs === null || typeof input.kwargs !== "object" || Array.isArray(input.kwargs)) {
    throw new TypeError("Task kwargs must be a plain object");
  }
  const eta = input.countdown !== null && input.countdown !== undefined
    ? pyIsoFormat(new Date(input.now.getTime() + input.countdown * 1000), "+00:00")
    : isoOrNull(input.eta);
  const expires = resolveExpires(input);
  const headers: Record<string, unknown> = {
    lang: "py",
    task: input.task,
    id: input.id,
    shadow: input.shadow ?? null,
    eta,
    expires: expires.header,
    group: input.group ?? null,
    group_index: input.groupIndex ?? null,
    retries: input.retries ?? 0,
    timelimit: [input.timeLimit ?? null, input.softTimeLimit ?? null],
    root_id: input.rootId ?? input.id,
    parent_id: input.parentId ?? null,
    argsrepr: argsRepr(input.args),
    kwargsrepr: kwargsRepr(input.kwargs),
    origin: input.origin,
    ignore_result: input.ignoreResult ?? false,
  };
  if (input.headers) Object.assign(headers, input.headers);
  let serialized;
  try {
    serialized = serialize([input.args, input.kwargs, embedOf(input.embed)], input.serializer);
  } catch (err) {
    throw rerootEncodeError(err, "body");
  }
  let { body } = serialized;
  const { contentType, contentEncoding } = serialized;
  if (input.compression) {
    headers.compression = compressionMimeType(input.compression);
    body = loadedCompression().compress(body, input.compression);
  }
  const properties: Message["properties"] = {
    correlation_id: input.id,
    reply_to: input.replyTo,
    delivery_mode: input.deliveryMode ?? 2,
  };
  if (expires.ms !== null) properties.expiration = String(Math.max(0, Math.trunc(expires.ms)));
  properties.priority = input.priority ?? 0;
  return { body, contentType, contentEncoding, headers, properties };
}
