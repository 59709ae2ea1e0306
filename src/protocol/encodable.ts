/**
 * What JSON and msgpack cannot carry, and where in a value it was found.
 * Both encoders refuse these values instead of silently changing them
 * (`JSON.stringify` turns a function into `null` and an `Error` into `{}`).
 *
 * @module
 */

import { EncodeError } from "./errors.ts";

/**
 * Why a value cannot be encoded, or `null` when it can (as far as this
 * value itself goes: its contents are checked as they are walked).
 * `undefined` is only refused inside arrays (it would arrive as `null`); as an
 * object property it is left out, which reads back the same.
 */
export function refusal(value: unknown, inArray: boolean): string | null {
  switch (typeof value) {
    case "function":
      return "a function cannot be sent: pass the data it needs, or a task signature";
    case "symbol":
      return "a Symbol cannot be sent: use a string";
    case "undefined":
      return inArray ? "undefined would arrive as null: pass null, or leave it out" : null;
    case "object":
      break;
    default:
      return null;
  }
  if (value === null) return null;
  if (value instanceof Error) {
    return `an ${value.name} object would arrive as {}: send its message ` +
      "(or a plain object with the fields you need), or throw it from the task";
  }
  if (value instanceof Map || value instanceof Set) {
    return `a ${value.constructor.name} cannot be encoded: convert it to a plain object or array`;
  }
  if (
    value instanceof RegExp || value instanceof Promise || value instanceof WeakMap ||
    value instanceof WeakSet
  ) {
    return `a ${value.constructor.name} would arrive as {}: send plain data` +
      (value instanceof Promise ? " (await it first)" : "");
  }
  return null;
}

/** A refusal on its way up from where it was found, collecting the path. */
export class Refused {
  /** What cannot be encoded and what to do instead. */
  readonly reason: string;
  /** Array indexes and object keys from the root to the refused part. */
  readonly segments: (string | number)[] = [];

  /** @param reason what cannot be encoded and what to do instead */
  constructor(reason: string) {
    this.reason = reason;
  }

  /** Record that the refused part sits under `key`; returns itself to rethrow. */
  under(key: string | number): Refused {
    this.segments.unshift(key);
    return this;
  }

  /** The error to throw from the encoder's entry point. */
  toError(): EncodeError {
    return new EncodeError(this.reason, { path: formatPath(this.segments) });
  }
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * A path as JavaScript would write it: `[0].items[2]`, `user.name`, `["a b"]`.
 *
 * @param segments array indexes and object keys from the root
 * @returns the path text (`""` for the root)
 */
export function formatPath(segments: readonly (string | number)[]): string {
  let out = "";
  for (const s of segments) {
    if (typeof s === "number") out += `[${s}]`;
    else if (IDENTIFIER.test(s)) out += out === "" ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/**
 * Re-root an {@link EncodeError} of a task body `[args, kwargs, options]`:
 * `[0][1]` becomes `args[1]`, `[1].x` becomes `kwargs.x`, and a result's
 * path is put under `result`.
 *
 * @param err what the encoder threw
 * @param root `"body"` for a task body, else the name to put in front
 * @returns the error with the path a user wrote
 */
export function rerootEncodeError(err: unknown, root: string): unknown {
  if (!(err instanceof EncodeError)) return err;
  let path: string;
  if (root === "body") {
    const m = /^\[(\d)\](.*)$/.exec(err.path);
    if (!m) return err;
    path = ["args", "kwargs", "options"][Number(m[1])] + m[2];
  } else {
    path = err.path === ""
      ? root
      : err.path.startsWith("[")
      ? root + err.path
      : `${root}.${err.path}`;
  }
  return new EncodeError(err.reason, { path });
}
