/**
 * Where a zstd body's first frame ends (RFC 8878, section 3.1), read from
 * its headers without decoding it: node:zlib's `zstdDecompressSync` (as
 * Deno has it) returns what it decoded of a frame cut short, with no error,
 * where Python's `zstandard` (kombu's zstd codec) raises.
 *
 * @module
 */

const FRAME_MAGIC = 0xfd2fb528;

/**
 * The length of the body's first zstd frame, or null when the body ends
 * before the frame does. A body that does not start with a frame (a
 * skippable frame, not zstd at all) is the decoder's to judge: 0.
 *
 * @example
 * ```ts
 * import { zstdCompressSync } from "node:zlib";
 * const frame = new Uint8Array(zstdCompressSync(new Uint8Array(10)));
 * zstdFrameEnd(frame); // frame.length
 * zstdFrameEnd(frame.subarray(0, frame.length - 1)); // null
 * ```
 *
 * @param body the compressed bytes
 * @returns the first frame's end, or null when it is cut short
 */
export function zstdFrameEnd(body: Uint8Array): number | null {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const has = (at: number, n: number) => at + n <= body.length;
  if (!has(0, 5)) return null;
  if (view.getUint32(0, true) !== FRAME_MAGIC) return 0;
  let at = 0;
  const descriptor = body[at + 4];
  const singleSegment = (descriptor >> 5) & 1;
  const contentSizeBytes = [singleSegment, 2, 4, 8][descriptor >> 6];
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3];
  at += 5 + (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes;
  for (;;) {
    if (!has(at, 3)) return null;
    const header = body[at] | (body[at + 1] << 8) | (body[at + 2] << 16);
    const type = (header >> 1) & 3;
    // Raw and compressed blocks hold Block_Size bytes, an RLE block one.
    at += 3 + (type === 1 ? 1 : header >>> 3);
    if (header & 1) break;
  }
  if ((descriptor >> 2) & 1) at += 4;
  return has(at, 0) ? at : null;
}
