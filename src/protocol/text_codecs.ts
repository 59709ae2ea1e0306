/**
 * Text codecs by Python's names, for a body's `content-encoding`. The web's
 * `TextDecoder` labels overlap Python's codec names but not their meaning:
 * `latin-1`, `iso-8859-1` and `ascii` are windows-1252 there (byte 0x80 is
 * "€", where Python's latin-1 gives U+0080 and its ascii refuses it). These
 * are decoded as Python does; a name the web maps to another code page than
 * Python's is refused.
 *
 * @module
 */

/**
 * A text decoder: its name in errors, and a strict decode (throws on bytes it cannot map).
 *
 * @example
 * ```ts
 * import { type TextCodec, textCodecOf } from "./text_codecs.ts";
 * const codec: TextCodec | null = textCodecOf("ascii");
 * codec?.decode(new Uint8Array([0x41])); // "A"
 * ```
 */
export interface TextCodec {
  /** The codec's name, e.g. `latin-1`, `UTF-8`. */
  readonly name: string;
  /** Decode `bytes`, throwing a TypeError on bytes the codec refuses. */
  decode(bytes: Uint8Array): string;
}

/** Python's aliases of its `latin_1` codec (normalized: see {@link pythonCodecName}). */
const LATIN1 = new Set([
  "latin_1",
  "latin1",
  "latin",
  "l1",
  "8859",
  "iso8859",
  "iso8859_1",
  "iso_8859_1",
  "iso_8859_1_1987",
  "iso_ir_100",
  "cp819",
  "ibm819",
  "csisolatin1",
]);

/** Python's aliases of its `ascii` codec (normalized). */
const ASCII = new Set([
  "ascii",
  "us_ascii",
  "us",
  "646",
  "ansi_x3.4_1968",
  "ansi_x3_4_1968",
  "ansi_x3.4_1986",
  "cp367",
  "csascii",
  "ibm367",
  "iso646_us",
  "iso_646.irv_1991",
  "iso_ir_6",
]);

/** Bytes Python's cp1252 refuses (the web's windows-1252 reads them as C1 controls). */
const CP1252_UNDEFINED = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);

/** A name as Python's codec lookup normalizes it: lower case, each run of other characters than letters, digits and `.` one `_`, none at the ends. */
function pythonCodecName(name: string): string {
  return name.toLowerCase().split(/[^a-z0-9.]+/).filter((part) => part !== "").join("_");
}

const latin1: TextCodec = {
  name: "latin-1",
  decode(bytes) {
    let out = "";
    // In chunks: String.fromCharCode takes its bytes as arguments.
    for (let i = 0; i < bytes.length; i += 8192) {
      out += String.fromCharCode(...bytes.subarray(i, i + 8192));
    }
    return out;
  },
};

const ascii: TextCodec = {
  name: "ascii",
  decode(bytes) {
    const at = bytes.findIndex((b) => b > 0x7f);
    if (at >= 0) throw new TypeError(`byte 0x${bytes[at].toString(16)} at ${at} is not ASCII`);
    return latin1.decode(bytes);
  },
};

/** Python's aliases of its `utf_16` codec (normalized). */
const UTF16 = new Set(["utf_16", "utf16", "u16"]);

const utf16le = new TextDecoder("utf-16le", { fatal: true });
const utf16be = new TextDecoder("utf-16be", { fatal: true });

/** Python's utf-16: big-endian after a BOM FE FF, else little-endian (the BOM dropped). */
const utf16: TextCodec = {
  name: "utf-16",
  decode(bytes) {
    return (bytes[0] === 0xfe && bytes[1] === 0xff ? utf16be : utf16le).decode(bytes);
  },
};

/**
 * The codec Python's `bytes.decode(name)` would use, as far as this runtime
 * has it.
 *
 * @example
 * ```ts
 * import { textCodecOf } from "./text_codecs.ts";
 * textCodecOf("latin-1")?.decode(new Uint8Array([0x80])); // "\u0080", not "€"
 * textCodecOf("iso-8859-9"); // null: the web reads it as windows-1254, Python does not
 * ```
 *
 * @param name a `content-encoding`, by Python's codec names
 * @returns its codec, or null when this runtime has none that decodes as Python's does
 */
export function textCodecOf(name: string): TextCodec | null {
  const python = pythonCodecName(name);
  if (LATIN1.has(python)) return latin1;
  if (ASCII.has(python)) return ascii;
  if (UTF16.has(python)) return utf16;
  let web: TextDecoder;
  try {
    // Python keeps a leading BOM but in its utf-16 codec: so does this decoder.
    web = new TextDecoder(name.trim(), { fatal: true, ignoreBOM: true });
  } catch {
    return null;
  }
  const page = /^windows-(\d+)$/.exec(web.encoding)?.[1];
  if (page !== undefined) {
    // Python's cp1252 is windows-1252 by these names only (iso-8859-9 is not windows-1254 there).
    if (![`cp${page}`, `windows_${page}`, page].includes(python)) return null;
  } else if (web.encoding.startsWith("x-")) return null;
  if (web.encoding !== "windows-1252") return { name: web.encoding, decode: (b) => web.decode(b) };
  return {
    name: "cp1252",
    decode(bytes) {
      const at = bytes.findIndex((b) => CP1252_UNDEFINED.has(b));
      if (at >= 0) {
        throw new TypeError(`byte 0x${bytes[at].toString(16)} at ${at} is undefined in cp1252`);
      }
      return web.decode(bytes);
    },
  };
}
