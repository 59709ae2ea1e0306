/**
 * Celery signature dicts (`celery.canvas.Signature` as JSON), result tuples
 * (`children`, group metas) and the chord-join wire forms. Pure.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import { pyJsonDumps, pyJsonLoads, pyJsonScalar } from "./json.ts";
import type { SignatureDict } from "./message.ts";
import type { ExceptionInfo } from "./result_meta.ts";
import { pyRepr } from "./repr.ts";

/**
 * The `subtask_type` values Celery writes: `null` for a plain task, else the
 * kind of composite signature.
 *
 * @example
 * ```ts
 * import { SUBTASK_TYPES } from "@celeriac/celeriac/protocol";
 * SUBTASK_TYPES.has("chord"); // true
 * ```
 */
export const SUBTASK_TYPES: ReadonlySet<string> = new Set([
  "chain",
  "group",
  "chord",
  "xmap",
  "xstarmap",
  "chunks",
]);

const SIGNATURE_KEYS: ReadonlySet<string> = new Set([
  "task",
  "args",
  "kwargs",
  "options",
  "subtask_type",
  "immutable",
  "chord_size",
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Check and normalise a signature dict received from a peer (a message's
 * `embed`, `options.link`, a chord body, a `celery.map` argument). Missing
 * `args`, `kwargs`, `options`, `immutable` take Celery's defaults.
 *
 * Unknown keys and an unknown `subtask_type` are rejected: a task that was
 * meant to run cannot silently run as something else. The error names the
 * offending key and where it was found.
 *
 * @example
 * ```ts
 * import { decodeSignature } from "@celeriac/celeriac/protocol";
 * const sig = decodeSignature({ task: "tasks.add", args: [2] });
 * sig.kwargs; // {}
 * sig.immutable; // false
 * ```
 *
 * @param value the parsed JSON value
 * @param where what it is, named in errors (e.g. `"embed.chain[0]"`)
 * @returns the signature dict
 * @throws {ProtocolError} when it is not a valid signature dict
 */
export function decodeSignature(value: unknown, where = "signature"): SignatureDict {
  if (!isObject(value)) {
    throw new ProtocolError(`${where} must be a signature object, got ${pyRepr(value)}`);
  }
  let unknown: string[] | null = null;
  // A loop, not Object.keys().filter(): a canvas of 200,000 members decodes each one.
  for (const k in value) {
    if (!SIGNATURE_KEYS.has(k) && Object.hasOwn(value, k)) (unknown ??= []).push(k);
  }
  if (unknown !== null) {
    throw new ProtocolError(
      `${where} has unknown key(s) ${unknown.join(", ")}: a Celery signature has only ` +
        `${[...SIGNATURE_KEYS].join(", ")}`,
    );
  }
  const { task, args = [], kwargs = {}, options = {}, immutable = false } = value;
  const subtaskType = value.subtask_type ?? null;
  if (typeof task !== "string" || task === "") {
    throw new ProtocolError(`${where} needs a non-empty string "task", got ${pyRepr(task)}`);
  }
  if (!Array.isArray(args)) throw new ProtocolError(`${where}.args must be an array`);
  if (!isObject(kwargs)) throw new ProtocolError(`${where}.kwargs must be an object`);
  if (!isObject(options)) throw new ProtocolError(`${where}.options must be an object`);
  if (typeof immutable !== "boolean") throw new ProtocolError(`${where}.immutable must be a bool`);
  if (
    subtaskType !== null && (typeof subtaskType !== "string" || !SUBTASK_TYPES.has(subtaskType))
  ) {
    throw new ProtocolError(
      `${where} has subtask_type ${pyRepr(subtaskType)}; expected null or one of ` +
        [...SUBTASK_TYPES].join(", "),
    );
  }
  const out: SignatureDict = {
    task,
    args: [...args],
    kwargs: { ...kwargs },
    options: { ...options },
    subtask_type: subtaskType as string | null,
    immutable,
  };
  if (value.chord_size !== undefined && value.chord_size !== null) {
    if (typeof value.chord_size !== "number") {
      throw new ProtocolError(`${where}.chord_size must be an integer or null`);
    }
    out.chord_size = value.chord_size;
  }
  return out;
}

/**
 * A signature dict with Celery's key order (`task, args, kwargs, options,
 * subtask_type, immutable`, then `chord_size` when set), ready to embed.
 *
 * @example
 * ```ts
 * import { encodeSignature } from "@celeriac/celeriac/protocol";
 * Object.keys(encodeSignature({ immutable: true, task: "t", args: [], kwargs: {}, options: {}, subtask_type: null }));
 * // ["task", "args", "kwargs", "options", "subtask_type", "immutable"]
 * ```
 *
 * @param sig the signature
 * @returns a copy in wire order
 */
export function encodeSignature(sig: SignatureDict): SignatureDict {
  const out: SignatureDict = {
    task: sig.task,
    args: sig.args ?? [],
    kwargs: sig.kwargs ?? {},
    options: sig.options ?? {},
    subtask_type: sig.subtask_type ?? null,
    immutable: sig.immutable ?? false,
  };
  if (sig.chord_size !== undefined && sig.chord_size !== null) out.chord_size = sig.chord_size;
  return out;
}

/**
 * A result tuple as Celery writes it in `children` and group metas: a task
 * (`[[id, parent], null]`) or a group (`[[id, parent], [members...]]`).
 *
 * @example
 * ```ts
 * import { type ResultTuple, resultTupleToJson } from "@celeriac/celeriac/protocol";
 * const t: ResultTuple = { id: "g1", members: [{ id: "a" }, { id: "b" }] };
 * resultTupleToJson(t); // [["g1", null], [[["a", null], null], [["b", null], null]]]
 * ```
 */
export interface ResultTuple {
  /** Task or group id. */
  id: string;
  /** The parent's tuple (chains), if recorded. */
  parent?: ResultTuple | null;
  /** Present for a group: its members. */
  members?: ResultTuple[];
}

/**
 * Encode a {@link ResultTuple} into Celery's nested-array form.
 *
 * @example
 * ```ts
 * import { resultTupleToJson } from "@celeriac/celeriac/protocol";
 * resultTupleToJson({ id: "a" }); // [["a", null], null]
 * ```
 *
 * @param t the tuple
 * @returns the JSON value
 */
export function resultTupleToJson(t: ResultTuple): unknown {
  const head = [t.id, t.parent ? resultTupleToJson(t.parent) : null];
  return [head, t.members ? t.members.map(resultTupleToJson) : null];
}

/**
 * The JSON text of a list of {@link ResultTuple}s, as `pyJsonDumps` writes
 * their nested-array form (a meta's `children`), without building those
 * arrays first: a task that sent a group of 200,000 writes 200,000 of them.
 *
 * @example
 * ```ts
 * import { resultTuplesText } from "@celeriac/celeriac/protocol";
 * resultTuplesText([{ id: "g", members: [{ id: "a" }] }]); // '[[["g", null], [[["a", null], null]]]]'
 * ```
 *
 * @param tuples the tuples
 * @returns `pyJsonDumps(tuples.map(resultTupleToJson))`
 */
export function resultTuplesText(tuples: readonly ResultTuple[]): string {
  let text = "[";
  for (let i = 0; i < tuples.length; i++) text += (i > 0 ? ", " : "") + tupleText(tuples[i]);
  return text + "]";
}

function tupleText(t: ResultTuple): string {
  const head = "[[" + pyJsonScalar(t.id) + ", " + (t.parent ? tupleText(t.parent) : "null") + "], ";
  return head + (t.members ? resultTuplesText(t.members) : "null") + "]";
}

/**
 * Decode Celery's nested-array result tuple.
 *
 * @example
 * ```ts
 * import { resultTupleFromJson } from "@celeriac/celeriac/protocol";
 * resultTupleFromJson([["g", null], [[["a", null], null]]]).members?.[0].id; // "a"
 * ```
 *
 * @param v the JSON value
 * @returns the tuple
 * @throws {ProtocolError} for anything else
 */
export function resultTupleFromJson(v: unknown): ResultTuple {
  if (!Array.isArray(v) || v.length !== 2 || !Array.isArray(v[0])) {
    throw new ProtocolError(`Not a Celery result tuple: ${pyRepr(v)}`);
  }
  const [[id, parent], members] = v as [[unknown, unknown], unknown];
  if (typeof id !== "string") throw new ProtocolError(`Result tuple id is not a string: ${id}`);
  const out: ResultTuple = { id };
  if (parent !== null && parent !== undefined) out.parent = resultTupleFromJson(parent);
  if (Array.isArray(members)) out.members = members.map(resultTupleFromJson);
  return out;
}

/**
 * The value Celery stores under `celery-taskset-meta-<gid>` for a saved
 * group (`GroupResult.save()`), readable by Python's `GroupResult.restore`.
 *
 * @example
 * ```ts
 * import { encodeGroupMeta } from "@celeriac/celeriac/protocol";
 * encodeGroupMeta("g", ["a"]); // '{"result": [["g", null], [[["a", null], null]]]}'
 * ```
 *
 * @param groupId the group id
 * @param members member task ids, or tuples for nested results
 * @returns the JSON text
 */
export function encodeGroupMeta(
  groupId: string,
  members: readonly (string | ResultTuple)[],
): string {
  const tuple: ResultTuple = {
    id: groupId,
    members: members.map((m) => typeof m === "string" ? { id: m } : m),
  };
  return pyJsonDumps({ result: resultTupleToJson(tuple) });
}

/**
 * Decode a saved group meta.
 *
 * @example
 * ```ts
 * import { decodeGroupMeta } from "@celeriac/celeriac/protocol";
 * decodeGroupMeta('{"result": [["g", null], [[["a", null], null]]]}').members?.length; // 1
 * ```
 *
 * @param text the stored JSON
 * @returns the group tuple
 * @throws {ProtocolError} when it is not a group meta
 */
export function decodeGroupMeta(text: string): ResultTuple {
  const v = pyJsonLoads(text);
  if (!isObject(v) || !("result" in v)) {
    throw new ProtocolError('A group meta is an object {"result": <group tuple>}');
  }
  const t = resultTupleFromJson(v.result);
  if (!t.members) throw new ProtocolError(`Group meta ${t.id} has no member list`);
  return t;
}

/**
 * Python `repr()` of an exception given as an exception dict, as Celery
 * writes it in a `ChordError` message: `ValueError('boom')`.
 *
 * @example
 * ```ts
 * import { exceptionRepr } from "@celeriac/celeriac/protocol";
 * exceptionRepr({ exc_type: "ValueError", exc_message: ["boom"], exc_module: "builtins" });
 * // "ValueError('boom')"
 * ```
 *
 * @param exc the exception dict
 * @returns the repr text
 */
export function exceptionRepr(exc: ExceptionInfo): string {
  const args = Array.isArray(exc.exc_message) ? exc.exc_message : [exc.exc_message];
  return `${exc.exc_type}(${args.map(pyRepr).join(", ")})`;
}

/**
 * Celery's `ChordError` dict for a chord whose header member failed:
 * `Dependency <id> raised <repr>`, module `celery.exceptions`, so Python's
 * `.get()` raises `celery.exceptions.ChordError`.
 *
 * @example
 * ```ts
 * import { chordError } from "@celeriac/celeriac/protocol";
 * chordError("t1", { exc_type: "ValueError", exc_message: ["boom"], exc_module: "builtins" })
 *   .exc_message; // ["Dependency t1 raised ValueError('boom')"]
 * ```
 *
 * @param taskId the failed member
 * @param exc its exception dict
 * @returns the ChordError exception dict
 */
export function chordError(taskId: string, exc: ExceptionInfo): ExceptionInfo {
  return {
    exc_type: "ChordError",
    exc_message: [`Dependency ${taskId} raised ${exceptionRepr(exc)}`],
    exc_module: "celery.exceptions",
  };
}

/**
 * Celery's `ChordError` dict for a chord whose body could not be sent
 * (its message cannot be encoded, say): `Callback error: <repr>`, as
 * Celery's chord join and `unlock_chord` store when `callback.delay` raises.
 *
 * @example
 * ```ts
 * import { callbackError } from "@celeriac/celeriac/protocol";
 * callbackError({ exc_type: "TypeError", exc_message: ["bad"], exc_module: "builtins" })
 *   .exc_message; // ["Callback error: TypeError('bad')"]
 * ```
 *
 * @param exc the sending error's exception dict
 * @returns the ChordError exception dict
 */
export function callbackError(exc: ExceptionInfo): ExceptionInfo {
  return {
    exc_type: "ChordError",
    exc_message: [`Callback error: ${exceptionRepr(exc)}`],
    exc_module: "celery.exceptions",
  };
}

/**
 * One header member's entry in the Redis chord join set
 * (`celery-taskset-meta-<gid>.j`): `[1, "<task_id>", "<STATE>", <result>]`.
 *
 * @example
 * ```ts
 * import { encodeChordMember } from "@celeriac/celeriac/protocol";
 * encodeChordMember("t1", "SUCCESS", "2"); // '[1, "t1", "SUCCESS", 2]'
 * ```
 *
 * @param taskId the member's id
 * @param state its final state
 * @param resultJson its result (or exception dict) as JSON text
 * @returns the member text
 */
export function encodeChordMember(taskId: string, state: string, resultJson: string): string {
  return `[1, ${pyJsonDumps(taskId)}, ${pyJsonDumps(state)}, ${resultJson}]`;
}

/**
 * A decoded chord join entry.
 *
 * @example
 * ```ts
 * import { type ChordMember, decodeChordMember } from "@celeriac/celeriac/protocol";
 * const m: ChordMember = decodeChordMember('[1, "t1", "SUCCESS", 2]');
 * m.result; // 2
 * ```
 */
export interface ChordMember {
  /** The member's task id. */
  taskId: string;
  /** Its state (`SUCCESS`, `FAILURE`, `REVOKED`). */
  state: string;
  /** Its result, or exception dict. */
  result: unknown;
}

/**
 * Decode one entry of the chord join set.
 *
 * @example
 * ```ts
 * import { decodeChordMember } from "@celeriac/celeriac/protocol";
 * decodeChordMember('[1, "t1", "FAILURE", {"exc_type": "E", "exc_message": [], "exc_module": "m"}]').state;
 * // "FAILURE"
 * ```
 *
 * @param text the stored text
 * @returns the member
 * @throws {ProtocolError} when it is not a join entry
 */
export function decodeChordMember(text: string): ChordMember {
  const v = pyJsonLoads(text);
  if (!Array.isArray(v) || v.length !== 4 || typeof v[1] !== "string" || typeof v[2] !== "string") {
    throw new ProtocolError(`Not a chord join entry: ${text.slice(0, 200)}`);
  }
  return { taskId: v[1], state: v[2], result: v[3] };
}
