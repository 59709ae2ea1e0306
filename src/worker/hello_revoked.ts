/**
 * The `revoked` argument of a control `hello` (sent by a starting worker
 * to sync revoked ids), read as Celery 5.2's `LimitedSet.update` reads it.
 *
 * @module
 */

import { pyRepr } from "../protocol/repr.ts";

/** What a `hello`'s `revoked` adds, and the error Celery would reply with. */
export interface HelloRevoked {
  /** Task ids to remember as revoked (added even when `error` is set, as Celery adds those before it). */
  ids: string[];
  /** Celery's error reply (`TypeError("unhashable type: 'list'")`), when it would raise. */
  error?: string;
}

/** Python's name of a JSON value's type. */
function pyType(v: unknown): string {
  if (v === null) return "NoneType";
  if (Array.isArray(v)) return "list";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  if (typeof v === "boolean") return "bool";
  return typeof v === "string" ? "str" : "dict";
}

/**
 * The ids a `hello`'s `revoked` adds, as Celery 5.2.6's worker takes them
 * (checked against a real one): a dict (what workers send: `{id: [time,
 * id]}`) adds its keys, each time a number (`ValueError` otherwise). One
 * deviation: Celery requires a float time, and an integer one (`[1, "k"]`)
 * is its `ValueError("Expecting float timestamp, got type <class 'int'>
 * with value: 1")`; here the control message is decoded as JSON numbers,
 * where `1` and `1.0` are the same, so any number is taken (Celery's
 * workers send float times; only a hand-made `hello` has an integer). A list
 * or a string adds its elements (a string's characters); anything else that
 * is not empty is a `TypeError`. Elements that are not strings are left
 * out: Celery keeps `1` or `None`, but no task id (a string) ever equals
 * them, so they revoke nothing; a list or dict element is unhashable, a
 * `TypeError`.
 *
 * @example
 * ```ts
 * import { helloRevoked } from "./hello_revoked.ts";
 * helloRevoked({ a: [1.5, "a"] }); // { ids: ["a"] }
 * helloRevoked([1, 2, "b"]); // { ids: ["b"] }
 * helloRevoked([[1]]); // { ids: [], error: `TypeError("unhashable type: 'list'")` }
 * ```
 *
 * @param revoked the argument as received
 * @returns the ids, and Celery's error reply when it would raise
 */
export function helloRevoked(revoked: unknown): HelloRevoked {
  const ids: string[] = [];
  if (isEmpty(revoked)) return { ids };
  if (typeof revoked === "string" || Array.isArray(revoked)) {
    for (const v of revoked) {
      if (v !== null && typeof v === "object") {
        return { ids, error: `TypeError(${pyRepr(`unhashable type: '${pyType(v)}'`)})` };
      }
      if (typeof v === "string") ids.push(v);
    }
    return { ids };
  }
  if (typeof revoked !== "object") {
    return { ids, error: `TypeError(${pyRepr(`'${pyType(revoked)}' object is not iterable`)})` };
  }
  for (const [id, entry] of Object.entries(revoked as Record<string, unknown>)) {
    if (Array.isArray(entry) && entry.length === 0) {
      return { ids, error: `IndexError('list index out of range')` };
    }
    const at = Array.isArray(entry) ? entry[0] : entry;
    if (typeof at !== "number") {
      const shown = typeof at === "string" ? at : pyRepr(at);
      const message = `Expecting float timestamp, got type <class '${
        pyType(at)
      }'> with value: ${shown}`;
      return { ids, error: `ValueError(${pyRepr(message)})` };
    }
    ids.push(id);
  }
  return { ids };
}

/** Python's falsy values among JSON's: `None`, `False`, `0`, `""`, `[]`, `{}`. */
function isEmpty(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === "object" && Object.keys(v as object).length === 0;
}
