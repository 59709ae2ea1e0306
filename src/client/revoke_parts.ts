/**
 * Splitting a revoke of many ids into several `revoke` requests, each
 * small enough for a broker that refuses big messages (the KV broker:
 * 60,000 bytes, about 5,000 ids); each part is a normal Celery `revoke`.
 *
 * @module
 */

import { pyJsonDumps } from "../protocol/json.ts";

/**
 * Bytes kept for what a request adds besides its arguments and
 * destination: the envelope (headers, properties, exchange), the body's
 * method, pattern and matcher, and a reply's ticket and `reply_to`.
 */
const REQUEST_ROOM = 2048;

/** Bytes each id adds to the list after the first: `", "`. */
const ID_SEPARATOR = 2;

/**
 * The ids of a revoke in parts whose request fits `maxBytes`: one part
 * when the broker has no limit (`undefined`: Redis, RabbitMQ, where a
 * revoke goes as one message as Celery sends it) or all fit; else as
 * many ids in each part as fit with `args` (the other arguments) and the
 * `destination`, in the order given. An id too big alone is a part of
 * its own (the broker then refuses it, saying by how much).
 *
 * @example
 * ```ts
 * import { revokeParts } from "./revoke_parts.ts";
 * const ids = Array.from({ length: 12_000 }, () => crypto.randomUUID());
 * revokeParts(ids, { terminate: false, signal: "SIGTERM" }, null, 60_000).length; // 3
 * revokeParts(ids, { terminate: false, signal: "SIGTERM" }, null, undefined).length; // 1
 * ```
 *
 * @param ids the task ids
 * @param args the request's other arguments (`terminate`, `signal`, …)
 * @param destination the node names, or `null` for every worker
 * @param maxBytes the broker's `maxMessageBytes`; `undefined` for none
 * @returns the parts, in order; together the ids given
 */
export function revokeParts(
  ids: readonly string[],
  args: Record<string, unknown>,
  destination: readonly string[] | null,
  maxBytes: number | undefined,
): string[][] {
  if (maxBytes === undefined) return [[...ids]];
  // pyJsonDumps writes ASCII only: its length is its size in bytes.
  const fixed = pyJsonDumps({ arguments: { ...args, task_id: [] }, destination }).length;
  const budget = maxBytes - REQUEST_ROOM - fixed;
  const parts: string[][] = [];
  let part: string[] = [];
  let bytes = 0;
  for (const id of ids) {
    const own = pyJsonDumps(id).length;
    if (part.length > 0 && bytes + ID_SEPARATOR + own > budget) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    bytes += (part.length > 0 ? ID_SEPARATOR : 0) + own;
    part.push(id);
  }
  if (part.length > 0 || parts.length === 0) parts.push(part);
  return parts;
}
