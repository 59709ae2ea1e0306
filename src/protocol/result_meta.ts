/**
 * Task states and the result metadata Celery stores for each task
 * (`celery-task-meta-<id>` on Redis).
 *
 * @module
 */

import { EncodeError, ProtocolError } from "./errors.ts";
import { rerootEncodeError } from "./encodable.ts";
import { BYTES_REFUSAL, pyJsonDumps, pyJsonLoads } from "./json.ts";
import { pyRepr } from "./repr.ts";
import { pyIsoFormat } from "./time.ts";

/**
 * Celery task states, and custom ones a task stores with
 * `ctx.updateState()` (e.g. `PROGRESS`). `PENDING` is never stored: a
 * missing key means pending.
 *
 * @example Comparing states
 * ```ts
 * import { Celery, type TaskState } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const state: TaskState = await app.asyncResult(crypto.randomUUID()).state();
 * if (state === "FAILURE" || state === "REVOKED") console.log("it will not succeed");
 * else if (state === "PENDING") console.log("nothing stored yet: waiting, or unknown id");
 * await app.close();
 * ```
 */
export type TaskState =
  | "PENDING"
  | "RECEIVED"
  | "STARTED"
  | "RETRY"
  | "SUCCESS"
  | "FAILURE"
  | "REVOKED"
  | "REJECTED"
  | "IGNORED"
  | (string & Record<never, never>);

/** Celery's own states: written without escaping. */
const BUILTIN_STATES: ReadonlySet<string> = new Set([
  "PENDING",
  "RECEIVED",
  "STARTED",
  "RETRY",
  "SUCCESS",
  "FAILURE",
  "REVOKED",
  "REJECTED",
  "IGNORED",
]);

/**
 * States after which a task will not change any more.
 *
 * @example
 * ```ts
 * import { READY_STATES } from "@celeriac/celeriac/protocol";
 * READY_STATES.has("SUCCESS"); // true
 * ```
 */
export const READY_STATES: ReadonlySet<TaskState> = new Set(["SUCCESS", "FAILURE", "REVOKED"]);

/**
 * States whose result is an exception dict.
 *
 * @example
 * ```ts
 * import { EXCEPTION_STATES } from "@celeriac/celeriac/protocol";
 * EXCEPTION_STATES.has("RETRY"); // true
 * ```
 */
export const EXCEPTION_STATES: ReadonlySet<TaskState> = new Set(["RETRY", "FAILURE", "REVOKED"]);

/**
 * A serialized exception, as Celery writes it in result metas.
 *
 * @example A failure Python re-raises as ValueError
 * ```ts
 * import { encodeResultMeta, type ExceptionInfo } from "@celeriac/celeriac/protocol";
 * const info: ExceptionInfo = {
 *   exc_type: "ValueError",
 *   exc_message: ["amount must be positive"],
 *   exc_module: "builtins",
 * };
 * const meta = encodeResultMeta({ taskId: "1", status: "FAILURE", result: info, dateDone: new Date() });
 * ```
 */
export interface ExceptionInfo {
  /** The class name (Python `__qualname__`), e.g. `ValueError`. */
  exc_type: string;
  /** The exception's arguments. */
  exc_message: unknown[];
  /** The defining module, e.g. `builtins` or `celery.exceptions`. */
  exc_module: string;
}

/**
 * The result metadata of one task.
 *
 * @example Reading a stored meta
 * ```ts
 * import { decodeResultMeta, type ResultMeta } from "@celeriac/celeriac/protocol";
 * const meta: ResultMeta = decodeResultMeta(
 *   '{"status": "SUCCESS", "result": 5, "traceback": null, "children": [], ' +
 *     '"date_done": "2024-05-01T12:00:00", "task_id": "1"}',
 * );
 * if (meta.status === "SUCCESS") console.log(meta.result, "done at", meta.date_done); // 5 done at 2024-…
 * ```
 */
export interface ResultMeta {
  /** The state. */
  status: TaskState;
  /** Return value, exception dict, or `{pid, hostname}` for STARTED. */
  result: unknown;
  /** Formatted traceback text for failures. */
  traceback: string | null;
  /** Result tuples of tasks sent while this one ran. */
  children: unknown[];
  /** When it became ready (naive UTC ISO text, as Celery 5.2 writes it). */
  date_done: string | null;
  /** Group id, when the task belonged to a group. */
  group_id?: string;
  /** Id of the task that sent this one. */
  parent_id?: string;
  /** The task id. */
  task_id: string;
  /** Any other field (e.g. `result_extended` fields). */
  [key: string]: unknown;
}

/**
 * Input of {@link encodeResultMeta}.
 *
 * @example The result of a group member
 * ```ts
 * import { encodeResultMeta, type ResultMetaInput } from "@celeriac/celeriac/protocol";
 * const input: ResultMetaInput = {
 *   taskId: "member-1",
 *   status: "SUCCESS",
 *   result: { rows: 120 },
 *   dateDone: new Date(0),
 *   groupId: "group-7",
 *   parentId: "import-3",
 * };
 * encodeResultMeta(input);
 * // '{"status": "SUCCESS", "result": {"rows": 120}, "traceback": null, "children": [],
 * //   "date_done": "1970-01-01T00:00:00", "group_id": "group-7", "parent_id": "import-3",
 * //   "task_id": "member-1"}'
 * ```
 */
export interface ResultMetaInput {
  /** The task id. */
  taskId: string;
  /** The state to store. */
  status: TaskState;
  /** Return value or exception dict. */
  result: unknown;
  /** Traceback text. */
  traceback?: string | null;
  /** Result tuples of child tasks. */
  children?: unknown[];
  /** Completion time; ready states only. Defaults to none. */
  dateDone?: Date | null;
  /** Group id. */
  groupId?: string | null;
  /** Parent task id. */
  parentId?: string | null;
  /** Celery's `result_extended` fields, stored when the worker's app sets `resultExtended`. */
  extended?: ExtendedResultFields;
}

/**
 * The fields Celery's `result_extended` adds to a result meta.
 *
 * @example
 * ```ts
 * import { encodeResultMeta, type ExtendedResultFields } from "@celeriac/celeriac/protocol";
 * const extended: ExtendedResultFields = {
 *   name: "tasks.add", args: [2, 3], kwargs: {}, worker: "celeriac@web1", retries: 0, queue: "celery",
 * };
 * encodeResultMeta({ taskId: "1", status: "SUCCESS", result: 5, extended });
 * ```
 */
export interface ExtendedResultFields {
  /** Task name. */
  name: string;
  /** Positional arguments. */
  args: unknown[];
  /** Keyword arguments. */
  kwargs: Record<string, unknown>;
  /** Node name of the worker that ran it. */
  worker: string;
  /** Retries so far. */
  retries: number;
  /** The queue it was taken from. */
  queue: string;
}

/**
 * Encode a result meta with Celery 5.2's key order and formats.
 *
 * @example
 * ```ts
 * import { encodeResultMeta } from "@celeriac/celeriac/protocol";
 * encodeResultMeta({ taskId: "1", status: "SUCCESS", result: 5, dateDone: new Date(0) });
 * // '{"status": "SUCCESS", "result": 5, "traceback": null, "children": [],
 * //   "date_done": "1970-01-01T00:00:00", "task_id": "1"}'
 * ```
 *
 * @param input the meta fields
 * @returns the JSON text to store
 */
export function encodeResultMeta(input: ResultMetaInput): string {
  return encodeResultMetaWithJson(input, pyJsonDumps(input.result));
}

/**
 * Like {@link encodeResultMeta}, with the result already encoded as JSON
 * text (a worker encodes results where the task ran).
 *
 * @example
 * ```ts
 * import { encodeResultMetaWithJson } from "@celeriac/celeriac/protocol";
 * encodeResultMetaWithJson({ taskId: "1", status: "SUCCESS", result: null }, "5");
 * ```
 *
 * @param input the meta fields (its `result` is ignored)
 * @param resultJson the encoded result
 * @returns the JSON text to store
 */
export function encodeResultMetaWithJson(input: ResultMetaInput, resultJson: string): string {
  const status = BUILTIN_STATES.has(input.status)
    ? '"' + input.status + '"'
    : pyJsonDumps(input.status);
  let out = '{"status": ' + status + ', "result": ' + resultJson + ', "traceback": ' +
    pyJsonDumps(input.traceback ?? null) + ', "children": ' + pyJsonDumps(input.children ?? []) +
    ', "date_done": ' + (input.dateDone ? '"' + pyIsoFormat(input.dateDone, "") + '"' : "null");
  if (input.groupId) out += ', "group_id": ' + pyJsonDumps(input.groupId);
  if (input.parentId) out += ', "parent_id": ' + pyJsonDumps(input.parentId);
  const x = input.extended;
  if (x) {
    out += ', "name": ' + pyJsonDumps(x.name) + ', "args": ' + extendedJson(x.args) +
      ', "kwargs": ' + extendedJson(x.kwargs) + ', "worker": ' + pyJsonDumps(x.worker) +
      ', "retries": ' + pyJsonDumps(x.retries) + ', "queue": ' + pyJsonDumps(x.queue);
  }
  return out + ', "task_id": ' + pyJsonDumps(input.taskId) + "}";
}

/**
 * A task's args or kwargs as JSON for the `result_extended` fields, which
 * never make a result unstorable: raw bytes (a msgpack task's args) are
 * written in kombu 5.3's `{"__type__": "bytes"|"base64", "__value__": ...}`
 * form (read back as bytes), and anything else JSON cannot carry is stored
 * as its Python repr string.
 */
function extendedJson(value: unknown): string {
  try {
    return pyJsonDumps(value);
  } catch {
    try {
      return pyJsonDumps(wrapBytes(value, new Set()));
    } catch {
      return pyJsonDumps(pyRepr(value));
    }
  }
}

/** `value` with every byte array replaced by kombu 5.3's JSON wrapper for bytes (a cycle is kept). */
function wrapBytes(value: unknown, seen: Set<object>): unknown {
  if (value === null || typeof value !== "object" || seen.has(value)) return value;
  if (ArrayBuffer.isView(value)) {
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    try {
      return {
        __type__: "bytes",
        __value__: new TextDecoder("utf-8", { fatal: true }).decode(bytes),
      };
    } catch {
      return { __type__: "base64", __value__: bytes.toBase64() };
    }
  }
  if (!Array.isArray(value) && Object.getPrototypeOf(value) !== Object.prototype) return value;
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => wrapBytes(v, seen));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = wrapBytes(v, seen);
    return out;
  } finally {
    seen.delete(value);
  }
}

/**
 * Decode a stored result meta.
 *
 * @example
 * ```ts
 * import { decodeResultMeta } from "@celeriac/celeriac/protocol";
 * decodeResultMeta('{"status": "SUCCESS", "result": 5, "task_id": "1"}').result; // 5
 * ```
 *
 * @param text the stored JSON
 * @param taskId the task it was stored for, named in the error, and the `task_id` of a meta
 *   without one
 * @returns the meta
 * @throws {ProtocolError} when it is not a result meta (not JSON: a Python
 *   app's `result_serializer` is other than `json`, or it starts with a BOM)
 */
export function decodeResultMeta(text: string, taskId?: string): ResultMeta {
  let v: Partial<ResultMeta> | null;
  try {
    v = pyJsonLoads(text) as Partial<ResultMeta> | null;
  } catch (err) {
    if (text.charCodeAt(0) === 0xfeff) {
      throw new ProtocolError(
        `The result${taskId ? ` of task ${taskId}` : ""} starts with a byte-order mark ` +
          `(U+FEFF), which JSON does not allow (Celery refuses it too): store it without one`,
        { taskId, cause: err },
      );
    }
    if (err instanceof ProtocolError && /nest(s too|ed) deep/.test(err.message)) {
      throw new ProtocolError(
        `The result${taskId ? ` of task ${taskId}` : ""} is JSON too deeply nested to read ` +
          `(${err.message}): return flatter data`,
        { taskId, cause: err },
      );
    }
    throw new ProtocolError(
      `The result${taskId ? ` of task ${taskId}` : ""} is not JSON: Celeriac reads results ` +
        `stored as JSON; set result_serializer = "json" (Celery's default) in the Python app ` +
        `that stored it (msgpack, pickle and yaml results cannot be read)`,
      { taskId, cause: err },
    );
  }
  if (v === null || typeof v !== "object" || typeof v.status !== "string") {
    throw new ProtocolError(
      `The result${taskId ? ` of task ${taskId}` : ""} is not an object with a string status`,
      { taskId },
    );
  }
  return {
    ...v,
    status: v.status,
    result: v.result ?? null,
    traceback: typeof v.traceback === "string" ? v.traceback : null,
    children: Array.isArray(v.children) ? v.children : [],
    date_done: typeof v.date_done === "string" ? v.date_done : null,
    task_id: typeof v.task_id === "string" ? v.task_id : taskId ?? "",
  };
}

/**
 * A task's return value as JSON for its result meta; what JSON cannot carry
 * throws an {@link EncodeError} whose path starts at `result`.
 *
 * @param value what the task returned
 * @returns the JSON text
 */
export function resultJson(value: unknown): string {
  try {
    return pyJsonDumps(value);
  } catch (err) {
    const rooted = rerootEncodeError(err, "result");
    if (rooted instanceof EncodeError && rooted.reason === BYTES_REFUSAL) {
      throw new EncodeError(
        "Raw bytes cannot be stored in a result: results are JSON (Celery's default " +
          "result_serializer; a msgpack task message does not change that). Return them " +
          "base64-encoded in a string",
        { path: rooted.path },
      );
    }
    throw rooted;
  }
}
