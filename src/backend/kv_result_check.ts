/**
 * What is wrong with a value read from a KV result backend's result key
 * (anything can write to a shared KV file), and the size limits of a
 * stored result that the check and the store share.
 *
 * @module
 */

import { isRecord, kind } from "../broker/kv_entry_check.ts";

/**
 * The longest result meta the KV backend stores, in bytes of JSON text:
 * 32 MiB. Deno KV stores at most 64 KiB per value, so a meta longer than
 * {@link KV_VALUE_BYTES} is split across several entries.
 *
 * @example
 * ```ts
 * import { KV_MAX_RESULT_BYTES } from "@celeriac/celeriac/transports";
 * console.assert(KV_MAX_RESULT_BYTES === 32 * 1024 * 1024);
 * ```
 */
export const KV_MAX_RESULT_BYTES = 32 * 1024 * 1024;

/**
 * The longest meta stored in one Deno KV value (which holds at most 64 KiB);
 * longer ones are split into parts of at most this size.
 *
 * @example
 * ```ts
 * import { KV_VALUE_BYTES } from "@celeriac/celeriac/transports";
 * console.assert(KV_VALUE_BYTES < 64 * 1024);
 * ```
 */
export const KV_VALUE_BYTES = 60 * 1024;

/** The most parts a stored result can name: its size limit in parts of the largest value. */
const MAX_RESULT_PARTS = Math.ceil(KV_MAX_RESULT_BYTES / KV_VALUE_BYTES);

/**
 * What is wrong with a stored task result (`{ meta, status, expiresAt,
 * parts? }`): `null` when it has that shape.
 *
 * @example
 * ```ts
 * import { resultProblem } from "./kv_result_check.ts";
 * resultProblem({ meta: "{}", status: 5, expiresAt: 0 }); // "its status is a number, not a string"
 * ```
 *
 * @param value the value as read
 * @returns what is wrong, or `null`
 */
export function resultProblem(value: unknown): string | null {
  if (!isRecord(value)) return `it is ${kind(value)}, not a stored result object`;
  if (typeof value.meta !== "string") return `its meta is ${kind(value.meta)}, not JSON text`;
  if (typeof value.status !== "string") {
    return `its status is ${kind(value.status)}, not a string`;
  }
  if (!Number.isFinite(value.expiresAt)) {
    return `its expiresAt is ${kind(value.expiresAt)}, not a finite number`;
  }
  if (value.parts === undefined) return null;
  const parts = value.parts as { id?: unknown; count?: unknown } | null;
  if (
    !isRecord(parts) || typeof parts.id !== "string" || !Number.isInteger(parts.count) ||
    (parts.count as number) < 1 || (parts.count as number) > MAX_RESULT_PARTS
  ) {
    return `its parts are not { id: string, count: 1..${MAX_RESULT_PARTS} }`;
  }
  return null;
}
