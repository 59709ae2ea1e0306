/**
 * Compressor names and the MIME types kombu writes in the `compression`
 * header. The compressors themselves live in `compression.ts`, loaded on
 * demand by {@link loadCodecs}.
 *
 * @module
 */

/**
 * Compressor names accepted when publishing, as in Celery's `compression=` option.
 *
 * @example Compressing the messages of an app
 * ```ts
 * import { Celery, type CompressionName } from "@celeriac/celeriac";
 * const compression: CompressionName = "zlib"; // what Python's compression="zlib" writes
 * const app = new Celery({ broker: "kv://:memory:", taskCompression: compression });
 * ```
 */
export type CompressionName = "zlib" | "gzip";

/**
 * The {@link CompressionName}s.
 *
 * @example
 * ```ts
 * COMPRESSION_NAMES.includes("zlib"); // true
 * ```
 */
export const COMPRESSION_NAMES: readonly CompressionName[] = ["zlib", "gzip"];

/** MIME types of the `compression` header, by kombu compressor name. */
const MIME_BY_NAME: Record<CompressionName, string> = {
  zlib: "application/x-gzip",
  gzip: "application/x-gzip",
};

/**
 * The `compression` header value for a compressor name.
 *
 * @example
 * ```ts
 * import { compressionMimeType } from "@celeriac/celeriac/protocol";
 * compressionMimeType("zlib"); // "application/x-gzip"
 * ```
 *
 * @param name a compressor name
 * @returns the MIME type kombu writes for it
 */
export function compressionMimeType(name: CompressionName): string {
  const mime = MIME_BY_NAME[name];
  if (!mime) throw new TypeError(`Unknown compression "${name}": use "zlib" (or its alias "gzip")`);
  return mime;
}
