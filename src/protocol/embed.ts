/**
 * Reading and checking the `embed` of a task body (callbacks, errbacks,
 * chain, chord) when the message is decoded, so that a malformed
 * signature is refused with the message, not found after the task ran.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import { jsonText } from "./json.ts";
import type { Embed, SignatureDict } from "./message.ts";

/**
 * Longest countdown or expiry, in seconds, a follow-up or a call may ask
 * for (about 100 years).
 *
 * @example
 * ```ts
 * import { MAX_OFFSET_SECONDS } from "./embed.ts";
 * const countdown = 3600;
 * console.log(Math.abs(countdown) <= MAX_OFFSET_SECONDS); // true
 * ```
 */
export const MAX_OFFSET_SECONDS = 3.2e9;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function fail(where: string, what: string, taskId: string): never {
  throw new ProtocolError(
    `Malformed ${where} in the task's embed: ${what} (a signature is ` +
      `{"task": "name", "args": [...], "kwargs": {...}, "options": {...}})`,
    { taskId },
  );
}

function checkOffset(v: unknown, field: string, where: string, taskId: string): void {
  if (typeof v === "number" && !(Math.abs(v) <= MAX_OFFSET_SECONDS)) {
    fail(where, `options.${field} ${v} is out of range`, taskId);
  }
}

function checkLinks(v: unknown, where: string, taskId: string): void {
  if (v === null || v === undefined) return;
  if (Array.isArray(v)) {
    v.forEach((s, i) => checkSignature(s, `${where}[${i}]`, taskId));
  } else {
    checkSignature(v, where, taskId);
  }
}

/**
 * Check that a value is a signature dict a worker can apply: an object with
 * a task name, `args` an array, `kwargs` and `options` objects, and options
 * (`link`, `link_error`, `chord`, `headers`, `countdown`, `expires`) of the
 * right types. Nesting is bounded by the message's depth limit.
 *
 * @example
 * ```ts
 * import { checkSignature } from "./embed.ts";
 * checkSignature({ task: "tasks.add", args: [1], kwargs: {}, options: {} }, "callbacks[0]", "id-1");
 * try {
 *   checkSignature({ task: null }, "callbacks[0]", "id-1");
 * } catch (err) {
 *   console.log((err as Error).message); // "Malformed callbacks[0] in the task's embed: ..."
 * }
 * ```
 *
 * @param v the value
 * @param where where it was found, for the error
 * @param taskId the task id, for the error
 * @throws {ProtocolError} when it is not an applicable signature
 */
export function checkSignature(v: unknown, where: string, taskId: string): void {
  if (!isObject(v)) {
    fail(where, `expected an object, got ${String(jsonText(v)).slice(0, 80)}`, taskId);
  }
  if (typeof v.task !== "string" || v.task === "") fail(where, "no task name", taskId);
  if (v.args !== undefined && v.args !== null && !Array.isArray(v.args)) {
    fail(where, "args is not an array", taskId);
  }
  if (v.kwargs !== undefined && v.kwargs !== null && !isObject(v.kwargs)) {
    fail(where, "kwargs is not an object", taskId);
  }
  const o = v.options;
  if (o === undefined || o === null) return;
  if (!isObject(o)) fail(where, "options is not an object", taskId);
  if (o.headers !== undefined && o.headers !== null && !isObject(o.headers)) {
    fail(where, "options.headers is not an object", taskId);
  }
  checkOffset(o.countdown, "countdown", where, taskId);
  checkOffset(o.expires, "expires", where, taskId);
  checkLinks(o.link, `${where}.options.link`, taskId);
  checkLinks(o.link_error, `${where}.options.link_error`, taskId);
  if (o.chord !== undefined && o.chord !== null) {
    checkSignature(o.chord, `${where}.options.chord`, taskId);
  }
}

function signatures(v: unknown, where: string, taskId: string): SignatureDict[] | null {
  if (v === null || v === undefined) return null;
  if (!Array.isArray(v)) fail(where, "expected a list of signatures", taskId);
  v.forEach((s, i) => checkSignature(s, `${where}[${i}]`, taskId));
  return v.length > 0 ? v as SignatureDict[] : null;
}

/**
 * Read the embed of a task body, refusing malformed signatures.
 *
 * @example
 * ```ts
 * import { embedFrom } from "./embed.ts";
 * embedFrom({ callbacks: null, errbacks: null, chain: [], chord: null }, "id-1").chain; // null
 * ```
 *
 * @param v the third element of the body (or a protocol-1 body's fields)
 * @param taskId the task id, for errors
 * @returns the embed, with empty lists as `null`
 * @throws {ProtocolError} for a malformed callback, errback, chain step or chord
 */
export function embedFrom(v: unknown, taskId: string): Embed {
  if (v !== null && v !== undefined && !isObject(v)) {
    fail("embed", "the third element of the body must be an object", taskId);
  }
  const e = (v ?? {}) as Record<string, unknown>;
  const chord = e.chord === null || e.chord === undefined ? null : e.chord;
  if (chord !== null) checkSignature(chord, "chord", taskId);
  return {
    callbacks: signatures(e.callbacks, "callbacks", taskId),
    errbacks: signatures(e.errbacks, "errbacks", taskId),
    chain: signatures(e.chain, "chain", taskId),
    chord: chord as SignatureDict | null,
  };
}
