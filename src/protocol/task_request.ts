/**
 * Decode task messages of protocol 2 (and protocol 1, converted to 2).
 *
 * The worker's main thread reads only the headers ({@link decodeTaskHeaders});
 * the body is decoded where the task runs ({@link decodeTaskBody}).
 *
 * @module
 */

import { loadedCompression } from "./codecs.ts";
import { embedFrom } from "./embed.ts";
import { ProtocolError, TaskNameError } from "./errors.ts";
import { describeValue } from "./task_fields.ts";
import { checkShape, MAX_HEADERS_SIZE } from "./limits.ts";
import type { Message, TaskBody } from "./message.ts";
import { deserialize } from "./serializers.ts";
import { parsePyDate } from "./time.ts";

/**
 * What the worker needs to know about a task before running it.
 *
 * @example What a worker reads before running a task
 * ```ts
 * import { decodeTaskHeaders, encodeTaskMessage, type TaskRequest } from "@celeriac/celeriac/protocol";
 * const message = encodeTaskMessage({
 *   task: "tasks.add", id: crypto.randomUUID(), args: [2, 3], kwargs: {}, timeLimit: 30,
 *   now: new Date(), origin: "gen1@host", replyTo: "r",
 * });
 * const req: TaskRequest = decodeTaskHeaders(message);
 * req.protocol; // 2
 * req.timeLimit; // [30, null]
 * req.argsrepr; // "(2, 3)"
 * req.rootId === req.id; // true: a call sent outside any task starts its own workflow
 * ```
 */
export interface TaskRequest {
  /** 2, or 1 for an old-style message (body already decoded then). */
  protocol: 1 | 2;
  /** Task name. */
  task: string;
  /** Task id. */
  id: string;
  /** Workflow root id. */
  rootId: string | null;
  /** Id of the task that sent this one. */
  parentId: string | null;
  /** Group id. */
  group: string | null;
  /** Position inside a chord header. */
  groupIndex: number | null;
  /**
   * How many times the task this message runs was replaced (`ctx.replace`)
   * on its way: the `replaced_task_nesting` header (Celery 5.3+, Celeriac),
   * or the message property Celery 5.2 puts it in on Redis; 0 when absent.
   */
  replacedTaskNesting: number;
  /** How many times it has been retried. */
  retries: number;
  /** Earliest run time. */
  eta: Date | null;
  /** Expiry time. */
  expires: Date | null;
  /** `[hard, soft]` time limits in seconds. */
  timeLimit: [number | null, number | null];
  /** Display name. */
  shadow: string | null;
  /** Do not store a success result. */
  ignoreResult: boolean;
  /** Sender node name. */
  origin: string | null;
  /** Python repr of the arguments (for logs). */
  argsrepr: string | null;
  /** Python repr of the keyword arguments. */
  kwargsrepr: string | null;
  /** Reply queue of the sender (rpc backend). */
  replyTo: string | null;
  /** Correlation id (normally the task id). */
  correlationId: string | null;
  /** All headers as received. */
  headers: Record<string, unknown>;
  /** For protocol 1 the body had to be decoded to read the headers. */
  body?: TaskBody;
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function num(v: unknown): number | null {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "bigint") return Number(v);
  return null;
}

function date(v: unknown, field: string, taskId: string): Date | null {
  if (v === null || v === undefined) return null;
  const d = v instanceof Date ? v : typeof v === "string" ? parsePyDate(v) : new Date(NaN);
  if (Number.isNaN(d.getTime())) {
    throw new ProtocolError(`Header ${field} is not an ISO-8601 date: ${describeValue(v)}`, {
      taskId,
    });
  }
  return d;
}

function timeLimit(v: unknown): [number | null, number | null] {
  if (!Array.isArray(v)) return [null, null];
  return [num(v[0]), num(v[1])];
}

function fromFields(
  f: Record<string, unknown>,
  headers: Record<string, unknown>,
  msg: Message,
  protocol: 1 | 2,
): TaskRequest {
  const id = f.id;
  const task = f.task;
  if (typeof id !== "string" || id === "") {
    throw new ProtocolError("Task message has no string id: it cannot be tracked");
  }
  if (typeof task !== "string" || task === "") {
    throw new ProtocolError("Task message has no task name", { taskId: id });
  }
  const props = msg.properties;
  return {
    protocol,
    task,
    id,
    // A root task is its own root: its id again, not a second copy (a worker
    // sending task events holds both until the events' window goes out).
    rootId: f.root_id === id ? id : str(f.root_id),
    parentId: str(f.parent_id),
    group: str(f.group) ?? str(f.taskset),
    groupIndex: num(f.group_index),
    replacedTaskNesting: num(f.replaced_task_nesting) ?? num(props.replaced_task_nesting) ?? 0,
    retries: num(f.retries) ?? 0,
    eta: date(f.eta, "eta", id),
    expires: date(f.expires, "expires", id),
    timeLimit: timeLimit(f.timelimit),
    shadow: str(f.shadow),
    ignoreResult: f.ignore_result === true,
    origin: str(f.origin),
    argsrepr: str(f.argsrepr),
    kwargsrepr: str(f.kwargsrepr),
    replyTo: str(props.reply_to),
    correlationId: str(props.correlation_id),
    headers,
  };
}

/**
 * The parts of a message needed to decode its body.
 *
 * @example Decoding a body from its parts
 * ```ts
 * import { type BodyParts, decodeTaskBody } from "@celeriac/celeriac/protocol";
 * const parts: BodyParts = {
 *   body: new TextEncoder().encode("[[2, 3], {}, {}]"),
 *   contentType: "application/json",
 *   contentEncoding: "utf-8",
 *   headers: {}, // only `compression` is read
 * };
 * decodeTaskBody(parts, "task-1").args; // [2, 3]
 * ```
 */
export type BodyParts = Pick<Message, "body" | "contentType" | "contentEncoding" | "headers">;

function decodedBody(msg: BodyParts, taskId?: string, maxDecompressed?: number): unknown {
  const compression = msg.headers.compression;
  const raw = typeof compression === "string"
    ? loadedCompression().decompress(msg.body, compression, taskId, maxDecompressed)
    : msg.body;
  return deserialize(raw, msg.contentType, msg.contentEncoding, taskId);
}

function checkArgs(args: unknown, kwargs: unknown, taskId: string): void {
  if (!Array.isArray(args)) {
    throw new ProtocolError(`Task args must be an array, got ${describeValue(args)}`, { taskId });
  }
  if (kwargs === null || typeof kwargs !== "object" || Array.isArray(kwargs)) {
    throw new ProtocolError(`Task kwargs must be an object, got ${describeValue(kwargs)}`, {
      taskId,
    });
  }
}

function v1Body(obj: Record<string, unknown>, taskId: string): TaskBody {
  const args = obj.args ?? [];
  const kwargs = obj.kwargs ?? {};
  checkArgs(args, kwargs, taskId);
  return {
    args: args as unknown[],
    kwargs: kwargs as Record<string, unknown>,
    embed: embedFrom(
      { callbacks: obj.callbacks, errbacks: obj.errbacks, chord: obj.chord },
      taskId,
    ),
  };
}

/**
 * Read the task metadata of a message: protocol 2 from its headers, protocol 1
 * (no `task` header) from its body, which is then decoded once and kept in
 * `body`.
 *
 * @example
 * ```ts
 * import { decodeTaskHeaders, encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * const msg = encodeTaskMessage({
 *   task: "tasks.add", id: "1", args: [1, 2], kwargs: {}, now: new Date(),
 *   origin: "gen1@host", replyTo: "r",
 * });
 * decodeTaskHeaders(msg).task; // "tasks.add"
 * ```
 *
 * @param msg a received message
 * @param headersChecked the headers were already checked against the nesting and size
 *   limits (by `decodeEnvelope`): not walked again. Default false.
 * @param maxDecompressed the most bytes a compressed protocol-1 body may decompress to;
 *   default `MAX_DECOMPRESSED_SIZE`
 * @returns the task request
 * @throws {TaskNameError} when the `task` header is there but not a string
 * @throws {ProtocolError} for a malformed message (no id, no name, bad dates,
 *   headers nested deeper than `MAX_NESTING_DEPTH` or larger than
 *   `MAX_HEADERS_SIZE`, a malformed embed in a protocol-1 body, one that
 *   decompresses to more than `maxDecompressed`)
 * @throws {ContentDisallowedError} for a refused content type (protocol 1 only)
 */
export function decodeTaskHeaders(
  msg: Message,
  headersChecked = false,
  maxDecompressed?: number,
): TaskRequest {
  const headers = msg.headers ?? {};
  if (typeof headers !== "object" || Array.isArray(headers)) {
    throw new ProtocolError("Message headers must be an object");
  }
  if (msg.undecodable !== undefined) {
    throw new ProtocolError(msg.undecodable, { taskId: str(headers.id) ?? undefined });
  }
  if (!headersChecked) {
    checkShape(headers, "headers", { maxSize: MAX_HEADERS_SIZE }, str(headers.id) ?? undefined);
  }
  if (typeof headers.task === "string") {
    const req = fromFields(headers, headers, msg, 2);
    if (headers.args !== undefined && req.body === undefined) {
      // A "hybrid" message: protocol-2 headers with a protocol-1 body object.
      const body = decodedBody(msg, req.id, maxDecompressed);
      if (body !== null && typeof body === "object" && !Array.isArray(body)) {
        req.body = v1Body(body as Record<string, unknown>, req.id);
      }
    }
    return req;
  }
  const taskId = str(headers.id) ?? undefined;
  if (headers.task !== undefined) {
    throw new TaskNameError(
      `Task header "task" must be a string (a registered task's name), got ${
        describeValue(headers.task)
      }`,
      { taskName: headers.task, taskId },
    );
  }
  const body = decodedBody(msg, taskId, maxDecompressed);
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new ProtocolError(
      "Message has no task header and its body is not a protocol-1 task object",
      { taskId },
    );
  }
  const obj = body as Record<string, unknown>;
  const req = fromFields(obj, { ...headers, ...obj }, msg, 1);
  req.body = v1Body(obj, req.id);
  return req;
}

/**
 * Decode a protocol-2 body `[args, kwargs, embed]` (decompressing first if
 * the `compression` header says so). A missing or empty `embed` is accepted,
 * and so is a two-element body, which Celery 5.2 itself cannot run.
 *
 * @example
 * ```ts
 * import { decodeTaskBody, encodeTaskMessage } from "@celeriac/celeriac/protocol";
 * const msg = encodeTaskMessage({
 *   task: "tasks.add", id: "1", args: [1, 2], kwargs: {}, now: new Date(),
 *   origin: "gen1@host", replyTo: "r",
 * });
 * decodeTaskBody(msg, "1").args; // [1, 2]
 * ```
 *
 * @param msg the message
 * @param taskId the task id, named in errors
 * @param maxDecompressed the most bytes a compressed body may decompress to; default
 *   `MAX_DECOMPRESSED_SIZE`
 * @returns args, kwargs and embed
 * @throws {ProtocolError} when the body is not a task body (or its embed
 *   holds a malformed signature, or it nests too deep, or it decompresses to
 *   more than `maxDecompressed`)
 * @throws {ContentDisallowedError} for a refused content type
 */
export function decodeTaskBody(
  msg: BodyParts,
  taskId: string,
  maxDecompressed?: number,
): TaskBody {
  const body = decodedBody(msg, taskId, maxDecompressed);
  if (!Array.isArray(body)) {
    if (body !== null && typeof body === "object" && "args" in body) {
      return v1Body(body as Record<string, unknown>, taskId);
    }
    throw new ProtocolError(
      "Task body must be the array [args, kwargs, embed]; got " + typeof body,
      { taskId },
    );
  }
  if (body.length < 2 || body.length > 3) {
    throw new ProtocolError(
      `Task body must have 3 elements [args, kwargs, embed]; got ${body.length}`,
      { taskId },
    );
  }
  const [args, kwargs, embed] = body;
  checkArgs(args, kwargs, taskId);
  return {
    args: args as unknown[],
    kwargs: kwargs as Record<string, unknown>,
    embed: embedFrom(embed, taskId),
  };
}
