/**
 * Body compressors (zlib, bzip2, brotli, zstd, and lzma through the xz
 * decoder in `xz.ts`). Loaded on demand by {@link loadCodecs}, so programs
 * that never see compressed bodies never load zlib or bzip2 code, nor the xz
 * decoder unless a body needs it.
 *
 * @module
 */

import {
  brotliDecompressSync,
  type BrotliOptions,
  deflateSync,
  inflateSync,
  zstdDecompressSync,
} from "node:zlib";
import { bunzip } from "./bzip2.ts";
import { loadedXz, LZMA_NAMES } from "./codecs.ts";
import { compressionMimeType, type CompressionName } from "./compression_names.ts";
import { ProtocolError } from "./errors.ts";
import { MAX_DECOMPRESSED_SIZE } from "./limits.ts";
import { zstdFrameEnd } from "./zstd_frame.ts";

/**
 * Compress a body for the given compressor (kombu's `zlib` writes a zlib
 * stream, RFC 1950, even under the `application/x-gzip` name).
 *
 * @example
 * ```ts
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
 * Decompress a body according to its `compression` header, refusing one
 * whose output passes `maxSize` bytes: each decoder stops as soon as it
 * does, before inflating the rest (a small message that would inflate to
 * gigabytes is refused having used about `maxSize` of memory).
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
 * decompress(bomb, "application/x-gzip", "t-1", 1024); // ProtocolError: ... over the 1 KiB limit
 * ```
 *
 * @param body compressed bytes
 * @param mimeType the `compression` header value
 * @param taskId the task id, for the error message
 * @param maxSize the most bytes the body may decompress to; default {@link MAX_DECOMPRESSED_SIZE}
 * @returns the decompressed bytes
 * @throws {ProtocolError} for an unknown compression, corrupt data, an
 * unloaded xz decoder, or an output over `maxSize`
 */
export function decompress(
  body: Uint8Array,
  mimeType: string,
  taskId?: string,
  maxSize: number = MAX_DECOMPRESSED_SIZE,
): Uint8Array {
  let out: Uint8Array | null | undefined;
  try {
    out = decoded(body, mimeType, maxSize);
  } catch (cause) {
    if (cause instanceof ProtocolError) throw cause;
    if ((cause as { code?: unknown } | null)?.code === "ERR_BUFFER_TOO_LARGE") out = null;
    else {
      throw new ProtocolError(`Corrupt ${mimeType} body: ${(cause as Error).message}`, {
        taskId,
        cause,
      });
    }
  }
  if (out === undefined) {
    throw new ProtocolError(
      `Unsupported compression ${mimeType}: Celeriac decodes zlib, bzip2, brotli, zstd and ` +
        `lzma (xz); ` +
        `send it with one of those or none (Celery's task_compression setting or ` +
        `compression= call option; Celeriac's taskCompression or compression option sends zlib or gzip)`,
      { taskId },
    );
  }
  if (out === null) {
    throw new ProtocolError(
      `Decompressed ${mimeType} body is over ${sizeText(maxSize)}: refused (a decompression ` +
        `bomb, or a larger body than this worker accepts: raise its maxDecompressedSize ` +
        `option, --max-decompressed-size on the command line)`,
      { taskId },
    );
  }
  return out;
}

/**
 * The body decoded; null when it passes `maxSize`, undefined for an unknown
 * compression. Names are kombu's MIME types and their aliases (kombu
 * writes the MIME type, and its decoder takes either).
 */
function decoded(
  body: Uint8Array,
  mimeType: string,
  maxSize: number,
): Uint8Array | null | undefined {
  const capped = { maxOutputLength: maxSize };
  switch (mimeType) {
    case "application/x-gzip":
    case "zlib":
    case "gzip":
      return new Uint8Array(inflateSync(body, capped));
    case "application/x-bz2":
    case "bzip2":
    case "bzip":
      return bunzip(body, maxSize);
    case "application/x-brotli":
    case "brotli":
      return unbrotli(body, maxSize);
    case "application/zstd":
    case "zstd":
    case "zstandard":
      if (zstdFrameEnd(body) === null) {
        throw new Error("compressed data ended before the end of its zstd frame");
      }
      return new Uint8Array(zstdDecompressSync(body, capped));
  }
  if (LZMA_NAMES.has(mimeType)) return loadedXz().xzDecode(body, maxSize);
  return undefined;
}

/**
 * Decode a body that must be one whole brotli stream and nothing more, as
 * Python's `brotli.decompress` (what kombu calls) requires. Deno's
 * `brotliDecompressSync` says neither: it returns what it has of a stream
 * cut short, ignores bytes after a whole one, and stops quietly at corrupt
 * data. How much of its input the decoder read tells: given the body and one
 * more byte, it stops at the body's end only when the stream ends there;
 * otherwise the body alone, read to its end, was cut short.
 */
function unbrotli(body: Uint8Array, maxSize: number): Uint8Array {
  const probed = new Uint8Array(body.length + 1);
  probed.set(body);
  const [out, read] = brotliRead(probed, maxSize);
  if (read === body.length) return out;
  const [, readAlone] = brotliRead(body, maxSize);
  if (readAlone === body.length) {
    throw new Error("compressed data ended before the end of its brotli stream");
  }
  throw new Error(
    `not one brotli stream: its decoder stopped after ${readAlone} of its ${body.length} bytes ` +
      `(corrupt data, or bytes after the end of the stream)`,
  );
}

/** The decoded bytes and how many bytes of `input` the decoder read. */
function brotliRead(input: Uint8Array, maxSize: number): [Uint8Array, number] {
  const options: BrotliOptions & { info: true } = { maxOutputLength: maxSize, info: true };
  const { buffer, engine } = brotliDecompressSync(input, options) as unknown as {
    buffer: Uint8Array;
    engine: { bytesWritten: number };
  };
  return [new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength), engine.bytesWritten];
}

function sizeText(bytes: number): string {
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (bytes >= size && bytes % size === 0) return `the ${bytes / size} ${unit} limit`;
  }
  return `the ${bytes.toLocaleString("en-US")}-byte limit`;
}
