/**
 * Body compressors (zlib, bzip2, brotli, zstd, and lzma through the xz
 * decoder in `xz.ts`). Loaded on demand by {@link loadCodecs}, so programs
 * that never see compressed bodies never load zlib or bzip2 code, nor the xz
 * decoder unless a body needs it.
 *
 * @module
 */

import { brotliDecompressSync, deflateSync, inflateSync, zstdDecompressSync } from "node:zlib";
import Bunzip from "seek-bzip";
import { loadedXz, LZMA_NAMES } from "./codecs.ts";
import { compressionMimeType, type CompressionName } from "./compression_names.ts";
import { ProtocolError } from "./errors.ts";

/**
 * Compress a body for the given compressor (kombu's `zlib` writes a zlib
 * stream, RFC 1950, even under the `application/x-gzip` name).
 *
 * @example
 * ```ts ignore
 * import { compress, decompress } from "./compression.ts";
 * const packed = compress(new TextEncoder().encode("[[], {}, {}]"), "zlib");
 * decompress(packed, "application/x-gzip");
 * ```
 *
 * @param body the serialized body
 * @param name the compressor
 * @returns the compressed bytes
 */
export function compress(body: Uint8Array, name: CompressionName): Uint8Array {
  compressionMimeType(name);
  return new Uint8Array(deflateSync(body));
}

/**
 * Decompress a body according to its `compression` header.
 *
 * Supports `application/x-gzip` (zlib), `application/x-bz2`,
 * `application/x-brotli`, `application/zstd` and `application/x-lzma`
 * (an `.xz` stream, as Python's `lzma.compress` writes; needs
 * `await loadCodecs({ lzma: true })` first).
 *
 * @example
 * ```ts ignore
 * import { compress, decompress } from "./compression.ts";
 * const raw = decompress(compress(new Uint8Array([1, 2]), "zlib"), "application/x-gzip");
 * ```
 *
 * @param body compressed bytes
 * @param mimeType the `compression` header value
 * @param taskId the task id, for the error message
 * @returns the decompressed bytes
 * @throws {ProtocolError} for an unknown compression, corrupt data or an
 * unloaded xz decoder
 */
export function decompress(body: Uint8Array, mimeType: string, taskId?: string): Uint8Array {
  try {
    switch (mimeType) {
      case "application/x-gzip":
      case "zlib":
      case "gzip":
        return new Uint8Array(inflateSync(body));
      case "application/x-bz2":
      case "bzip2":
        return new Uint8Array(Bunzip.decode(body));
      case "application/x-brotli":
      case "brotli":
        return new Uint8Array(brotliDecompressSync(body));
      case "application/zstd":
      case "zstd":
        return new Uint8Array(zstdDecompressSync(body));
    }
    if (LZMA_NAMES.has(mimeType)) return loadedXz().xzDecode(body);
  } catch (cause) {
    if (cause instanceof ProtocolError) throw cause;
    throw new ProtocolError(`Corrupt ${mimeType} body: ${(cause as Error).message}`, {
      taskId,
      cause,
    });
  }
  throw new ProtocolError(
    `Unsupported compression ${mimeType}: Celeriac decodes zlib, bzip2, brotli, zstd and ` +
      `lzma (xz); ` +
      `send it with one of those or none (Celery's task_compression setting or ` +
      `compression= call option; Celeriac's taskCompression or compression option sends zlib or gzip)`,
    { taskId },
  );
}
