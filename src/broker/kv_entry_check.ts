/**
 * What is wrong with a value read from the KV broker's or result backend's
 * keys: a waiting message, an unacknowledged or parked entry, a broadcast,
 * a depth counter (a stored result: backend/kv_result_check.ts). Anything can write to a shared KV file
 * (another program, another version, a hand edit), so every path that reads
 * these values checks them here first and parks, lists or reports the bad
 * one instead of failing on it. A few `typeof` tests each: cheap enough for
 * every take.
 *
 * @module
 */

/**
 * How a value is described in a problem: its type, `null` or `missing`.
 *
 * @example
 * ```ts
 * import { kind } from "./kv_entry_check.ts";
 * kind("x"); // "a string"
 * ```
 *
 * @param value the value as read
 * @returns its description
 */
export function kind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Uint8Array) return "bytes";
  if (value === undefined) return "missing";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * Whether a value is a plain object (not null, an array or bytes).
 *
 * @example
 * ```ts
 * import { isRecord } from "./kv_entry_check.ts";
 * isRecord({}); // true
 * ```
 *
 * @param value the value as read
 * @returns whether it is one
 */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Uint8Array);
}

/**
 * What is wrong with a stored message (a waiting one, or the message of an
 * unacknowledged, parked or broadcast entry): `null` when it is an object
 * with a `body` of bytes, an `envelope` string, a finite `step`, and a
 * boolean `redelivered` and numeric `restores` when they are there.
 *
 * @example
 * ```ts
 * import { messageProblem } from "./kv_entry_check.ts";
 * messageProblem(null); // "it is null, not a stored message object"
 * messageProblem({ body: new Uint8Array(), envelope: "{}", step: 0, redelivered: false }); // null
 * ```
 *
 * @param value the value as read
 * @returns what is wrong, or `null`
 */
export function messageProblem(value: unknown): string | null {
  if (!isRecord(value)) return `it is ${kind(value)}, not a stored message object`;
  if (!(value.body instanceof Uint8Array)) return `its body is ${kind(value.body)}, not bytes`;
  if (typeof value.envelope !== "string") {
    return `its envelope is ${kind(value.envelope)}, not JSON text`;
  }
  if (typeof value.step !== "number" || !Number.isFinite(value.step)) {
    return `its priority step is ${kind(value.step)}, not a finite number`;
  }
  if (value.redelivered !== undefined && typeof value.redelivered !== "boolean") {
    return `its redelivered flag is ${kind(value.redelivered)}, not a boolean`;
  }
  if (value.restores !== undefined && !Number.isFinite(value.restores)) {
    return `its restore count is ${kind(value.restores)}, not a finite number`;
  }
  return null;
}

/**
 * What is wrong with an unacknowledged entry: `null` when it holds a queue
 * name, a finite lease deadline and a well-formed message.
 *
 * @example
 * ```ts
 * import { unackedProblem } from "./kv_entry_check.ts";
 * unackedProblem({ queue: "celery", deadline: "soon", message: null });
 * // "its deadline is a string, not a finite number"
 * ```
 *
 * @param value the value as read
 * @returns what is wrong, or `null`
 */
export function unackedProblem(value: unknown): string | null {
  if (!isRecord(value)) return `it is ${kind(value)}, not an unacknowledged entry object`;
  if (typeof value.queue !== "string") return `its queue is ${kind(value.queue)}, not a string`;
  if (!Number.isFinite(value.deadline)) {
    return `its deadline is ${kind(value.deadline)}, not a finite number`;
  }
  const message = messageProblem(value.message);
  return message === null ? null : `its message: ${message}`;
}

/**
 * What is wrong with a parked record itself (its queue, reason, task id and
 * name, time): `null` when it can be listed. Its message is checked apart
 * with {@link messageProblem} before it is requeued: a message parked
 * because it was malformed is kept as found.
 *
 * @example
 * ```ts
 * import { parkedProblem } from "./kv_entry_check.ts";
 * parkedProblem(null); // "it is null, not a parked entry object"
 * ```
 *
 * @param value the value as read
 * @returns what is wrong, or `null`
 */
export function parkedProblem(value: unknown): string | null {
  if (!isRecord(value)) return `it is ${kind(value)}, not a parked entry object`;
  if (typeof value.queue !== "string") return `its queue is ${kind(value.queue)}, not a string`;
  if (typeof value.reason !== "string") {
    return `its reason is ${kind(value.reason)}, not a string`;
  }
  for (const field of ["taskId", "taskName"]) {
    const v = value[field];
    if (v !== null && typeof v !== "string") return `its ${field} is ${kind(v)}, not a string`;
  }
  if (!Number.isFinite(value.parkedAt)) {
    return `its parkedAt is ${kind(value.parkedAt)}, not a finite number`;
  }
  return null;
}

/**
 * What is wrong with a broadcast entry (`{ message, at }`): `null` when it
 * has a finite time and a well-formed message.
 *
 * @example
 * ```ts
 * import { broadcastProblem } from "./kv_entry_check.ts";
 * broadcastProblem("x"); // "it is a string, not a broadcast entry object"
 * ```
 *
 * @param value the value as read
 * @returns what is wrong, or `null`
 */
export function broadcastProblem(value: unknown): string | null {
  if (!isRecord(value)) return `it is ${kind(value)}, not a broadcast entry object`;
  if (!Number.isFinite(value.at)) return `its time is ${kind(value.at)}, not a finite number`;
  const message = messageProblem(value.message);
  return message === null ? null : `its message: ${message}`;
}

/**
 * What is wrong with a queue's depth counter: `null` when it is missing
 * (no message yet) or a `Deno.KvU64` not taken below zero (sums wrap at
 * 2^64).
 *
 * @example
 * ```ts
 * import { depthProblem } from "./kv_entry_check.ts";
 * depthProblem(new Deno.KvU64(3n)); // null
 * depthProblem("x"); // "it is a string, not a Deno.KvU64"
 * ```
 *
 * @param value the value as read
 * @returns what is wrong, or `null`
 */
export function depthProblem(value: unknown): string | null {
  if (value === null) return null;
  if (!(value instanceof Deno.KvU64)) return `it is ${kind(value)}, not a Deno.KvU64`;
  return value.value < 2n ** 63n ? null : "it was taken below zero";
}

/**
 * A KV key as text for a log line or a reason: its parts joined, bigints
 * with their `n`.
 *
 * @example
 * ```ts
 * import { keyText } from "./kv_entry_check.ts";
 * keyText(["celeriac", "parked", 1n, "x"]); // '["celeriac","parked",1n,"x"]'
 * ```
 *
 * @param key the key
 * @returns the text
 */
export function keyText(key: Deno.KvKey): string {
  const part = (p: Deno.KvKeyPart) =>
    typeof p === "bigint"
      ? `${p}n`
      : p instanceof Uint8Array
      ? `bytes(${p.byteLength})`
      : JSON.stringify(p);
  return `[${key.map(part).join(",")}]`;
}
