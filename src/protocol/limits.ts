/**
 * Bounds on what a received message may contain, checked without recursion
 * so that no message can drive the decoder (or the structured clone that
 * hands a task to a Web Worker, or the re-encoding of a restored message)
 * past the call stack.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";

/**
 * Deepest nesting of arrays and objects accepted in a message's headers,
 * properties or body. Celery canvases nest a few levels per chain or chord
 * step; a structured clone overflows the stack somewhere past 4,000.
 *
 * @example
 * ```ts
 * import { MAX_NESTING_DEPTH } from "@celeriac/celeriac/protocol";
 * MAX_NESTING_DEPTH; // 128
 * ```
 */
export const MAX_NESTING_DEPTH = 128;

/**
 * Largest size of a message's headers, in UTF-16 code units of their
 * strings plus 8 per value (an estimate of their JSON size). Celery's
 * headers are a few hundred bytes: `argsrepr` and `kwargsrepr` are cut at
 * 1,024 characters.
 *
 * @example
 * ```ts
 * import { MAX_HEADERS_SIZE } from "@celeriac/celeriac/protocol";
 * MAX_HEADERS_SIZE; // 1048576
 * ```
 */
export const MAX_HEADERS_SIZE = 1024 * 1024;

/**
 * Default largest size of a message body once decompressed (its
 * `compression` header: zlib, bzip2, brotli, zstd, lzma), 64 MiB. The
 * decoders stop as soon as their output passes it, so a small message that
 * would inflate to gigabytes (a decompression bomb) is refused having used
 * at most this much memory. Celery task bodies are their arguments, a few
 * KB as a rule; 64 MiB of JSON is already a few hundred MiB once parsed,
 * and RabbitMQ 4 refuses messages over 16 MiB by default. A worker's
 * `maxDecompressedSize` option (`--max-decompressed-size`) sets another.
 *
 * @example
 * ```ts
 * import { MAX_DECOMPRESSED_SIZE } from "@celeriac/celeriac/protocol";
 * MAX_DECOMPRESSED_SIZE; // 67108864
 * ```
 */
export const MAX_DECOMPRESSED_SIZE = 64 * 1024 * 1024;

/**
 * Limits for {@link checkShape}.
 *
 * @example
 * ```ts
 * import type { ShapeLimits } from "@celeriac/celeriac/protocol";
 * const limits: ShapeLimits = { maxDepth: 16, maxSize: 4096 };
 * ```
 */
export interface ShapeLimits {
  /** Deepest nesting accepted; default {@link MAX_NESTING_DEPTH}. */
  maxDepth?: number;
  /** Largest estimated size accepted; default unlimited. */
  maxSize?: number;
}

/**
 * Check, without recursion, that a decoded value nests no deeper than
 * `maxDepth` and is not larger than `maxSize`.
 *
 * @example
 * ```ts
 * import { checkShape } from "@celeriac/celeriac/protocol";
 * checkShape({ a: [1, 2] }, "headers"); // fine
 * let deep: unknown = 1;
 * for (let i = 0; i < 200; i++) deep = [deep];
 * try {
 *   checkShape(deep, "body", { maxDepth: 128 });
 * } catch (err) {
 *   console.log((err as Error).message); // "Message body nests deeper than 128 levels ..."
 * }
 * ```
 *
 * @param value a decoded value
 * @param what what it is, named in the error ("headers", "body")
 * @param limits depth and size limits
 * @param taskId the task id, when known, for the error
 * @throws {ProtocolError} when a limit is passed
 */
export function checkShape(
  value: unknown,
  what: string,
  limits: ShapeLimits = {},
  taskId?: string,
): void {
  const maxDepth = limits.maxDepth ?? MAX_NESTING_DEPTH;
  const maxSize = limits.maxSize ?? Infinity;
  if (value === null || typeof value !== "object") {
    if (typeof value === "string" && value.length > maxSize) tooLarge(what, maxSize, taskId);
    return;
  }
  // A walk inside a getter of the value (no decoded message has one) gets stacks of its own.
  const shared = !walking;
  const stack = shared ? STACK : [];
  const depths = shared ? DEPTHS : [];
  walking = true;
  let top = 0;
  stack[0] = value;
  depths[0] = 1;
  let size = 0;
  try {
    while (top >= 0) {
      const v = stack[top];
      const depth = depths[top];
      stack[top--] = undefined;
      if (depth > maxDepth) {
        throw new ProtocolError(
          `Message ${what} nests deeper than ${maxDepth} levels: refused (flatten the data, ` +
            `or send it as a string)`,
          { taskId },
        );
      }
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          size += 8;
          const item: unknown = v[i];
          if (typeof item === "string") size += item.length;
          else if (item !== null && typeof item === "object") {
            stack[++top] = item;
            depths[top] = depth + 1;
          }
        }
      } else if (isPlain(v)) {
        // for-in with an own-key check rather than Object.keys: no array of keys per object.
        const obj = v as Record<string, unknown>;
        for (const k in obj) {
          if (!Object.hasOwn(obj, k)) continue;
          size += 8 + k.length;
          const item = obj[k];
          if (typeof item === "string") size += item.length;
          else if (item !== null && typeof item === "object") {
            stack[++top] = item;
            depths[top] = depth + 1;
          }
        }
      } else continue;
      if (size > maxSize) tooLarge(what, maxSize, taskId);
    }
  } finally {
    // What a refusal left on the shared stack must not stay reachable from it.
    for (; top >= 0; top--) stack[top] = undefined;
    if (shared) {
      walking = false;
      if (stack.length > KEPT_STACK) stack.length = depths.length = 0;
    }
  }
}

/**
 * The walk's stacks, kept between calls: a message's headers are checked
 * without allocating (they grow to the deepest walk seen and stay so).
 */
const STACK: unknown[] = [];
const DEPTHS: number[] = [];
let walking = false;
/** Longest stacks kept after a walk (a wide value's walk does not keep its size). */
const KEPT_STACK = 1024;

function isPlain(v: unknown): boolean {
  if (v === null || typeof v !== "object") return false;
  if (v instanceof Date || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return false;
  return true;
}

function tooLarge(what: string, maxSize: number, taskId: string | undefined): never {
  throw new ProtocolError(
    `Message ${what} are larger than ${maxSize} bytes: refused (send large data in the body, ` +
      `or store it elsewhere and send a reference)`,
    { taskId },
  );
}
