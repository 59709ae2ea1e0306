/**
 * The xz decoder for kombu's `lzma` compressor (`application/x-lzma`):
 * Python's `lzma.compress` writes an `.xz` stream with a CRC64 check. It is
 * xz-embedded (by the xz authors) compiled to WebAssembly, from the
 * `xz-decompress` package: no native code, no file or network access, and
 * the wasm is inlined in its JavaScript, so `deno compile` needs nothing more.
 * Loaded by {@link loadCodecs} only when a message names this compression.
 *
 * @module
 */

import xzDecompress from "xz-decompress";

/** The exports of the xz-decompress wasm module (its `src/native/xz-decompress.c`). */
interface XzWasm {
  memory: WebAssembly.Memory;
  /** A decoder; returns its context: `[bufSize, in, inPos, inSize, out, outPos]` as u32s. */
  create_context(): number;
  destroy_context(context: number): void;
  /** `inSize` bytes are at `in`; 0 means the input ended. */
  supply_input(context: number, inSize: number): void;
  /** Runs the decoder (xz_dec_catrun): an `xz_ret` code. */
  get_next_output(context: number): number;
}

/**
 * xz-decompress's public API is an async `ReadableStream`; a body is decoded
 * synchronously here, like the other compressions, on the wasm instance that
 * its `XzReadableStream` class loads and keeps (the version is pinned in
 * deno.json, and tests/protocol_xz_test.ts covers this use).
 */
interface XzLoader {
  _getModuleInstance(): Promise<void>;
  _moduleInstance?: WebAssembly.Instance;
}

/** xz-embedded's `enum xz_ret`, after XZ_OK (0) and XZ_STREAM_END (1). */
const XZ_ERRORS: Record<number, string> = {
  2: "unsupported integrity check",
  3: "out of memory",
  4: "its dictionary is over the decoder's 64 MiB limit",
  5: "not an xz stream",
  6: "unsupported xz options (filters)",
  7: "corrupt data or a failed integrity check",
  8: "truncated xz stream",
};

/**
 * Wasm memory (bytes) past which the instance is replaced after a decode.
 * Its memory only grows: a stream's dictionary is allocated in it (8 MiB
 * for Python's default preset 6, 64 MiB for preset 9) and stays there, in
 * every isolate that decoded one, unless the instance goes. Above the
 * default preset's needs, so that its messages keep one instance.
 */
const RENEW_ABOVE = 16 * 1024 * 1024;

let wasm: XzWasm | null = null;
/** A new instance being made, after a decode that left the memory over {@link RENEW_ABOVE}. */
let renewal: Promise<void> | null = null;

/**
 * Instantiate the decoder (once; later calls return at once, or once the
 * instance that replaces one grown by a large stream is ready).
 *
 * @example
 * ```ts ignore
 * await loadXz();
 * ```
 */
export async function loadXz(): Promise<void> {
  if (renewal) await renewal;
  if (wasm) return;
  const loader = xzDecompress.XzReadableStream as unknown as XzLoader;
  if (!loader._moduleInstance) await loader._getModuleInstance();
  wasm = loader._moduleInstance!.exports as unknown as XzWasm;
}

/**
 * Bytes of the decoder's wasm memory (which grows with the dictionaries of
 * the streams it decodes, see {@link loadXz}); 0 before it is loaded.
 *
 * @example
 * ```ts ignore
 * await loadXz();
 * xzMemory(); // 131072
 * ```
 *
 * @returns the size
 */
export function xzMemory(): number {
  return wasm?.memory.buffer.byteLength ?? 0;
}

/** Replace the instance (its memory goes with it); decodes use the old one until then. */
function renew(): void {
  const loader = xzDecompress.XzReadableStream as unknown as XzLoader;
  renewal = loader._getModuleInstance().then(
    () => {
      wasm = loader._moduleInstance!.exports as unknown as XzWasm;
    },
    // The old instance stays: it still decodes, and the next large stream tries again.
    () => {},
  ).finally(() => {
    renewal = null;
  });
}

/**
 * Decode a whole `.xz` body (concatenated streams and stream padding
 * included), checking its CRC32/CRC64 as Python's `lzma.decompress` does,
 * and stopping as soon as the output passes `maxSize`. A stream whose
 * dictionary grew the decoder's memory past 16 MiB (presets 7 to 9) has
 * the decoder replaced in the background, so that the memory goes back.
 *
 * @example
 * ```ts ignore
 * await loadXz();
 * xzDecode(bytesFromPythonLzmaCompress, 64 * 1024 * 1024);
 * ```
 *
 * @param body the compressed bytes
 * @param maxSize the most bytes the output may have
 * @returns the decompressed bytes, or null when they would be more than `maxSize`
 * @throws {Error} for a body that is not a complete, intact xz stream
 */
export function xzDecode(body: Uint8Array, maxSize: number): Uint8Array | null {
  if (!wasm) throw new Error("the xz decoder is not loaded");
  const x = wasm;
  const context = x.create_context();
  const state = () => new Uint32Array(x.memory.buffer, context, 6);
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    const [bufSize, inAt, , , outAt] = state();
    let offset = 0;
    for (;;) {
      let s = state();
      if (s[2] === s[3]) {
        const n = Math.min(bufSize, body.length - offset);
        new Uint8Array(x.memory.buffer, inAt, n).set(body.subarray(offset, offset + n));
        offset += n;
        x.supply_input(context, n);
      }
      const ret = x.get_next_output(context);
      s = state();
      if (s[5] > 0) {
        total += s[5];
        if (total > maxSize) return null;
        chunks.push(new Uint8Array(x.memory.buffer, outAt, s[5]).slice());
        s[5] = 0;
      }
      if (ret === 1) break;
      if (ret !== 0) throw new Error(XZ_ERRORS[ret] ?? `xz decoder error ${ret}`);
    }
  } finally {
    x.destroy_context(context);
    if (x.memory.buffer.byteLength > RENEW_ABOVE && x === wasm && !renewal) renew();
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
