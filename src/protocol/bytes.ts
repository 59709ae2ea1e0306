/**
 * Byte arrays read in pieces, joined.
 *
 * @module
 */

/**
 * Join byte chunks into one array, in order.
 *
 * @example
 * ```ts
 * import { joinBytes } from "./bytes.ts";
 * joinBytes([new Uint8Array([1, 2]), new Uint8Array([3])]); // Uint8Array [1, 2, 3]
 * ```
 *
 * @param chunks the pieces, in order
 * @returns one array holding all of them
 */
export function joinBytes(chunks: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const c of chunks) size += c.byteLength;
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return all;
}
