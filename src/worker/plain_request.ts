/**
 * A run request's flags as one number, and a plain request rebuilt from its
 * packed fields: shared by the two forms a batch of requests travels in to
 * a Web Worker (`run_batch.ts` posted, `run_ring.ts` through a shared ring).
 *
 * @module
 */

import type { RunRequest } from "./executor.ts";

const STORE = 1;
const DESCRIBE = 2;
const REDELIVERED = 4;
const EXTENDED = 8;

/**
 * A request's boolean fields as one number (read back by {@link plainRequest}).
 *
 * @example
 * ```ts ignore
 * nums[at + 1] = requestFlags(r);
 * ```
 *
 * @param r the request
 * @returns its flags
 */
export function requestFlags(r: RunRequest): number {
  return (r.storeResult ? STORE : 0) | (r.describe ? DESCRIBE : 0) |
    (r.extended ? EXTENDED : 0) | (r.info.redelivered ? REDELIVERED : 0);
}

/**
 * A request with no headers, limits, canvas or schedule fields (its own
 * root), from its packed fields.
 *
 * @example
 * ```ts ignore
 * const r = plainRequest(seq, "tasks.add", id, body, "application/json", "utf-8", flags, 0, "celery", "w@h");
 * ```
 *
 * @param seq the worker's dispatch number
 * @param task the task name
 * @param id the task id
 * @param body the message body
 * @param contentType its content type
 * @param contentEncoding its content encoding
 * @param flags what {@link requestFlags} gave
 * @param retries the retries so far
 * @param queue the queue it came from
 * @param hostname the worker's hostname
 * @returns the request
 */
export function plainRequest(
  seq: number,
  task: string,
  id: string,
  body: Uint8Array,
  contentType: string,
  contentEncoding: string,
  flags: number,
  retries: number,
  queue: string,
  hostname: string,
): RunRequest {
  return {
    seq,
    task,
    id,
    body,
    contentType,
    contentEncoding,
    headers: {},
    decoded: undefined,
    storeResult: (flags & STORE) !== 0,
    describe: (flags & DESCRIBE) !== 0,
    extended: (flags & EXTENDED) !== 0,
    timeLimits: undefined,
    info: {
      retries,
      rootId: id,
      parentId: null,
      group: null,
      eta: null,
      expires: null,
      queue,
      redelivered: (flags & REDELIVERED) !== 0,
      hostname,
    },
  };
}
