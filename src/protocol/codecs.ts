/**
 * Optional codecs: msgpack and body compression are loaded on demand, so
 * programs that only exchange JSON (the Celery default) stay small. Every
 * Web Worker of a worker pool imports the app, so this matters there most.
 *
 * @module
 */

import type * as Compression from "./compression.ts";
import { ProtocolError } from "./errors.ts";
import type * as Msgpack from "./msgpack.ts";
import type * as Xz from "./xz.ts";

let msgpack: typeof Msgpack | null = null;
let compression: typeof Compression | null = null;
let xz: typeof Xz | null = null;

/**
 * kombu's names of its `lzma` compressor (`application/x-lzma`, aliases `lzma` and `xz`).
 *
 * @example
 * ```ts
 * LZMA_NAMES.has("application/x-lzma"); // true
 * ```
 */
export const LZMA_NAMES: ReadonlySet<string> = new Set(["application/x-lzma", "lzma", "xz"]);

/**
 * Which optional codecs to load.
 *
 * @example Loading every optional codec up front
 * ```ts
 * import { type CodecNeeds, loadCodecs, serialize } from "@celeriac/celeriac/protocol";
 * const needs: CodecNeeds = { msgpack: true, compression: true };
 * await loadCodecs(needs);
 * serialize([1, 2], "msgpack").contentType; // "application/x-msgpack"
 * ```
 */
export interface CodecNeeds {
  /** The msgpack serializer. */
  msgpack?: boolean;
  /** Body compression (zlib, bzip2, brotli, zstd; lzma also needs `lzma`). */
  compression?: boolean;
  /**
   * The xz decoder for kombu's `lzma` compression (WebAssembly), on top of
   * `compression`: loaded only for a message that uses it.
   */
  lzma?: boolean;
}

/**
 * Load optional codecs (once; later calls return at once, but for an xz
 * decoder being replaced after a large stream, which they wait for).
 *
 * @example
 * ```ts
 * import { loadCodecs, serialize } from "@celeriac/celeriac/protocol";
 * await loadCodecs({ msgpack: true });
 * serialize([1, 2], "msgpack");
 * ```
 *
 * @param needs which codecs
 */
export async function loadCodecs(needs: CodecNeeds): Promise<void> {
  if (needs.msgpack && !msgpack) msgpack = await import("./msgpack.ts");
  if ((needs.compression || needs.lzma) && !compression) {
    compression = await import("./compression.ts");
  }
  if (needs.lzma) {
    const module = xz ?? await import("./xz.ts");
    await module.loadXz();
    xz = module;
  }
}

/**
 * Which codecs a message body needs: its content type and its
 * `compression` header.
 *
 * @example
 * ```ts
 * import { codecsFor } from "@celeriac/celeriac/protocol";
 * codecsFor("application/x-msgpack", undefined); // { msgpack: true, compression: false, lzma: false }
 * ```
 *
 * @param contentType the body's content type
 * @param compressionHeader the `compression` header value
 * @returns what to pass to {@link loadCodecs}
 */
export function codecsFor(contentType: string, compressionHeader: unknown): Required<CodecNeeds> {
  return {
    msgpack: contentType === "application/x-msgpack",
    compression: typeof compressionHeader === "string",
    lzma: typeof compressionHeader === "string" && LZMA_NAMES.has(compressionHeader),
  };
}

/**
 * The codecs a received body needs ({@link codecsFor}), or null when it
 * needs none (JSON, uncompressed: Celery's default), so that a caller
 * awaits {@link loadCodecs} only when there is something to load.
 *
 * @example
 * ```ts
 * import { type Delivery, loadCodecs } from "@celeriac/celeriac/protocol";
 * async function prepare(delivery: Delivery): Promise<void> {
 *   const needs = codecsToLoad(delivery.contentType, delivery.headers.compression);
 *   if (needs) await loadCodecs(needs);
 * }
 * ```
 *
 * @param contentType the body's content type
 * @param compressionHeader the `compression` header value
 * @returns what to pass to {@link loadCodecs}, or null
 */
export function codecsToLoad(
  contentType: string,
  compressionHeader: unknown,
): Required<CodecNeeds> | null {
  const needs = codecsFor(contentType, compressionHeader);
  return needs.msgpack || needs.compression ? needs : null;
}

/**
 * Which codecs a message sent with these options needs: its `serializer`
 * and its `compression`, each else the sender's default.
 *
 * @example
 * ```ts
 * codecsForOptions({ serializer: "msgpack" }); // { msgpack: true, compression: false }
 * codecsForOptions({}, { serializer: "json", compression: "gzip" }); // { msgpack: false, compression: true }
 * ```
 *
 * @param options the send's options (a task's, a signature's, a route's)
 * @param defaults the sender's serializer and compression; default none (JSON, uncompressed)
 * @returns what to pass to {@link loadCodecs} (never `lzma`: Celeriac does not send it)
 */
export function codecsForOptions(
  options: { readonly serializer?: unknown; readonly compression?: unknown },
  defaults: { readonly serializer?: string; readonly compression?: string | null } = {},
): Required<Omit<CodecNeeds, "lzma">> {
  const compression = options.compression ?? defaults.compression;
  return {
    msgpack: (options.serializer ?? defaults.serializer) === "msgpack",
    compression: typeof compression === "string" && compression !== "",
  };
}

function notLoaded(what: string): ProtocolError {
  return new ProtocolError(`${what} support is not loaded: call await loadCodecs() first`);
}

/**
 * The msgpack codec, once loaded.
 *
 * @example
 * ```ts
 * import { loadedMsgpack } from "@celeriac/celeriac/protocol";
 * loadedMsgpack().msgpackEncode([1]);
 * ```
 *
 * @returns the codec module
 * @throws {ProtocolError} when it was not loaded
 */
export function loadedMsgpack(): typeof Msgpack {
  if (!msgpack) throw notLoaded("msgpack");
  return msgpack;
}

/**
 * The compressors, once loaded.
 *
 * @example
 * ```ts
 * import { loadCodecs, loadedCompression } from "@celeriac/celeriac/protocol";
 * await loadCodecs({ compression: true });
 * const bytes = loadedCompression().compress(new TextEncoder().encode("[[], {}, {}]"), "zlib");
 * loadedCompression().decompress(bytes, "application/x-gzip");
 * ```
 *
 * @returns the compression module
 * @throws {ProtocolError} when it was not loaded
 */
export function loadedCompression(): typeof Compression {
  if (!compression) throw notLoaded("Compression");
  return compression;
}

/**
 * The xz decoder (kombu's `lzma` compression), once loaded.
 *
 * @example
 * ```ts
 * await loadCodecs({ compression: true, lzma: true });
 * const decode = (bytes: Uint8Array) => loadedXz().xzDecode(bytes, 64 * 1024 * 1024); // null past 64 MiB
 * ```
 *
 * @returns the decoder module
 * @throws {ProtocolError} when it was not loaded
 */
export function loadedXz(): typeof Xz {
  if (!xz) throw notLoaded("lzma (xz)");
  return xz;
}
