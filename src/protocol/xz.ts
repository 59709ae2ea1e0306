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
 * ```ts
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
 * ```ts
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

/** xz-embedded's `SEQ_STREAM_PADDING`: the decoder is between two streams. */
const SEQ_STREAM_PADDING = 10;

/** CRC32 (reflected, polynomial 0xedb88320), as an xz stream footer checks its fields. */
const CRC32_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/**
 * Whether the 12 bytes before `end` can be an xz stream footer: its CRC32
 * of the backward size and flags, null first flags byte, known check type,
 * and `YZ` magic. Where a stream may end, so that the decoder is stopped
 * there and asked whether one did.
 */
function mayEndStream(body: Uint8Array, end: number): boolean {
  if (end < 24 || body[end - 2] !== 0x59 || body[end - 1] !== 0x5a) return false;
  if (body[end - 4] !== 0 || body[end - 3] > 0x0f) return false;
  let crc = 0xffffffff;
  for (let i = end - 8; i < end - 2; i++) crc = (crc >>> 8) ^ CRC32_TABLE[(crc ^ body[i]) & 0xff];
  const stored = body[end - 12] | (body[end - 11] << 8) | (body[end - 10] << 16) |
    (body[end - 9] << 24);
  return ((crc ^ 0xffffffff) | 0) === (stored | 0);
}

/**
 * Decode a whole `.xz` body, checking its CRC32/CRC64, and stopping as soon
 * as the output passes `maxSize`. Streams one after the other (and the
 * stream padding between them) are decoded and their outputs joined. After
 * a whole stream, what follows is taken as Python's `lzma.decompress` (what
 * kombu calls) takes it: bytes that do not make another whole stream are
 * dropped, with what was decoded of them, unless they are an xz stream cut
 * short (they start with its 0xFD byte), which is an error. A stream whose
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
 * @throws {Error} for a body whose first stream is not a complete, intact xz
 * stream, or with a stream cut short after whole ones
 */
export function xzDecode(body: Uint8Array, maxSize: number): Uint8Array | null {
  if (!wasm) throw new Error("the xz decoder is not loaded");
  const x = wasm;
  const context = x.create_context();
  const state = () => new Uint32Array(x.memory.buffer, context, 8);
  const chunks: Uint8Array[] = [];
  let total = 0;
  /** Where the last whole stream ended: in the body, and in the output. */
  let streamsEnd: { offset: number; total: number } | null = null;
  try {
    const [bufSize, inAt, , , outAt, , , decoder] = state();
    let offset = 0;
    for (;;) {
      let s = state();
      if (s[2] === s[3]) {
        let end = Math.min(offset + bufSize, body.length);
        for (let at = offset + 1; at < end; at++) {
          if (mayEndStream(body, at)) {
            end = at;
            break;
          }
        }
        const n = end - offset;
        new Uint8Array(x.memory.buffer, inAt, n).set(body.subarray(offset, end));
        offset = end;
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
      if (ret !== 0) {
        const error = new Error(XZ_ERRORS[ret] ?? `xz decoder error ${ret}`);
        if (!streamsEnd) throw error;
        let next = streamsEnd.offset;
        while (body[next] === 0) next++; // stream padding
        if (ret === 8 && body[next] === 0xfd) throw error;
        total = streamsEnd.total;
        break;
      }
      if (
        s[2] === s[3] && offset < body.length &&
        new Uint32Array(x.memory.buffer, decoder, 1)[0] === SEQ_STREAM_PADDING
      ) streamsEnd = { offset, total };
    }
  } finally {
    x.destroy_context(context);
    if (x.memory.buffer.byteLength > RENEW_ABOVE && x === wasm && !renewal) renew();
  }
  if (chunks.length === 1) return chunks[0].subarray(0, total);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    if (at + c.length >= total) {
      out.set(c.subarray(0, total - at), at);
      break;
    }
    out.set(c, at);
    at += c.length;
  }
  return out;
}
