/**
 * A lone plain run request (no headers, limits, canvas or schedule fields:
 * what `packRun` would pack without extras) on its way from the main
 * thread to a Web Worker through its shared ring (`shared_ring.ts`)
 * instead of a post.
 *
 * @module
 */

import type { RunRequest } from "./executor.ts";
import { plainRequest, requestFlags } from "./plain_request.ts";
import type { RingReader, RingWriter } from "./shared_ring.ts";
import { utf8Text } from "../protocol/utf8_text.ts";

/** A batch: its count (u32, padded). */
const BATCH_BYTES = 8;
/** A request's numbers: seq, flags, retries (f64). */
const NUMS_BYTES = 24;

const encoder = new TextEncoder();

/** The fields the ring carries or restores: a field added to `RunRequest` later is posted. */
const CARRIED = new Set([
  "seq",
  "task",
  "id",
  "body",
  "contentType",
  "contentEncoding",
  "headers",
  "decoded",
  "storeResult",
  "describe",
  "extended",
  "timeLimits",
  "info",
]);
const CARRIED_INFO = new Set([
  "retries",
  "rootId",
  "parentId",
  "group",
  "eta",
  "expires",
  "queue",
  "redelivered",
  "hostname",
  "groupIndex",
  "replacedTaskNesting",
]);

/**
 * Whether a request is plain: every field the ring does not carry has its usual value,
 * and its strings are well-formed UTF-16 (UTF-8 would turn a lone surrogate into U+FFFD,
 * where a post keeps it).
 */
function plain(r: RunRequest): boolean {
  const info = r.info;
  for (const _ in r.headers) return false;
  for (const k in r) {
    if (!CARRIED.has(k) && (r as unknown as Record<string, unknown>)[k] !== undefined) return false;
  }
  for (const k in info) {
    if (!CARRIED_INFO.has(k) && (info as unknown as Record<string, unknown>)[k] !== undefined) {
      return false;
    }
  }
  return r.decoded === undefined && r.timeLimits === undefined && info.rootId === r.id &&
    info.parentId === null && info.group === null && info.eta === null &&
    info.expires === null && (info.groupIndex === undefined || info.groupIndex === null) &&
    !info.replacedTaskNesting && r.id.isWellFormed() && r.task.isWellFormed() &&
    r.contentType.isWellFormed() && r.contentEncoding.isWellFormed() &&
    info.queue.isWellFormed() && info.hostname.isWellFormed();
}

/**
 * Write a lone plain run request to the ring: the latency case of a worker
 * given one task at a time. A batch of several is posted: in a drain of
 * 20,000 no-ops, batches through the ring cost the Web Workers 17–22 µs of
 * CPU per task against 12 posted (copying each request's strings and body
 * out of shared memory, where a post clones one buffer and one string
 * table per batch), and the drain took 1.05–1.5× as long.
 *
 * @example
 * ```ts ignore
 * if (!writeRuns(member.runs.ring, batch, member.runs.posts)) member.worker.postMessage(...);
 * ```
 *
 * @param ring the main thread's end
 * @param batch the requests
 * @param posts messages posted to the Web Worker before it
 * @returns false when the batch is not one plain request, or it does not fit (post it then)
 */
export function writeRuns(ring: RingWriter, batch: readonly RunRequest[], posts: number): boolean {
  if (batch.length !== 1) return false;
  // UTF-8 takes at most 3 bytes per UTF-16 unit; six strings and the body, each with its length.
  let max = BATCH_BYTES;
  for (const r of batch) {
    if (!plain(r)) return false;
    max += NUMS_BYTES + 28 + r.body.byteLength + 3 *
        (r.id.length + r.task.length + r.contentType.length + r.contentEncoding.length +
          r.info.queue.length + r.info.hostname.length);
  }
  return ring.write(max, posts, (v, start, bytes) => {
    v.setUint32(start, batch.length, true);
    let at = start + BATCH_BYTES;
    const text = (s: string) => {
      const n = encoder.encodeInto(s, bytes.subarray(at + 4)).written;
      v.setUint32(at, n, true);
      at += 4 + n;
    };
    for (const r of batch) {
      const info = r.info;
      v.setFloat64(at, r.seq, true);
      v.setFloat64(at + 8, requestFlags(r), true);
      v.setFloat64(at + 16, info.retries, true);
      at += NUMS_BYTES;
      text(r.id);
      text(r.task);
      text(r.contentType);
      text(r.contentEncoding);
      text(info.queue);
      text(info.hostname);
      v.setUint32(at, r.body.byteLength, true);
      bytes.set(r.body, at + 4);
      at += 4 + r.body.byteLength;
    }
    return at - start;
  });
}

/**
 * Read the run requests written after at most `posts` posts, in order
 * (each body copied out of the ring).
 *
 * @example
 * ```ts ignore
 * const batch = readRuns(reader, postsHandled);
 * ```
 *
 * @param ring the Web Worker's end
 * @param posts posts of the main thread handled so far
 * @returns the requests
 */
export function readRuns(ring: RingReader, posts: number): RunRequest[] {
  const out: RunRequest[] = [];
  ring.read(posts, (v, start, bytes) => {
    const n = v.getUint32(start, true);
    let at = start + BATCH_BYTES;
    const text = () => {
      const len = v.getUint32(at, true);
      const s = utf8Text(bytes.subarray(at + 4, at + 4 + len));
      at += 4 + len;
      return s;
    };
    for (let i = 0; i < n; i++) {
      const seq = v.getFloat64(at, true);
      const flags = v.getFloat64(at + 8, true);
      const retries = v.getFloat64(at + 16, true);
      at += NUMS_BYTES;
      const id = text();
      const task = text();
      const contentType = text();
      const contentEncoding = text();
      const queue = text();
      const hostname = text();
      const bodyLength = v.getUint32(at, true);
      const body = bytes.slice(at + 4, at + 4 + bodyLength);
      at += 4 + bodyLength;
      out.push(
        plainRequest(
          seq,
          task,
          id,
          body,
          contentType,
          contentEncoding,
          flags,
          retries,
          queue,
          hostname,
        ),
      );
    }
  });
  return out;
}
