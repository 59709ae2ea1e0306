/**
 * Text codecs by Python's names, for a body's `content-encoding`. The web's
 * `TextDecoder` labels overlap Python's codec names but not their meaning
 * (`latin-1` and `ascii` are windows-1252 there, `koi8-u` is KOI8-RU, `gbk`
 * and `big5` are supersets that read bytes Python refuses, and names such as
 * `unicode` or `ucs-2` are no Python codec at all). So only an explicit table
 * of Python codecs is read, each exactly as Python decodes it: utf-8,
 * utf-8-sig, utf-16 (and -le, -be), latin-1, ascii and cp1252, by Python's
 * names and aliases. Every other name is refused by name.
 *
 * @module
 */

import { STRICT_UTF8 } from "./utf8_text.ts";

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

const utf8SigDecoder = new TextDecoder("utf-8", { fatal: true });
const utf16leKeep = new TextDecoder("utf-16le", { fatal: true, ignoreBOM: true });
const utf16beKeep = new TextDecoder("utf-16be", { fatal: true, ignoreBOM: true });
const cp1252Decoder = new TextDecoder("windows-1252", { fatal: true });

/** Python's utf-8 (a leading BOM kept, as U+FEFF). */
const utf8: TextCodec = { name: "utf-8", decode: (b) => STRICT_UTF8.decode(b) };

/** Python's cp1252: the web's windows-1252 less the bytes Python leaves undefined. */
const cp1252: TextCodec = {
  name: "cp1252",
  decode(bytes) {
    const at = bytes.findIndex((b) => CP1252_UNDEFINED.has(b));
    if (at >= 0) {
      throw new TypeError(`byte 0x${bytes[at].toString(16)} at ${at} is undefined in cp1252`);
    }
    return cp1252Decoder.decode(bytes);
  },
};

/** Python's codec names and aliases (normalized) that are read, each to its codec. */
const CODECS: ReadonlyMap<string, TextCodec> = new Map([
  ...[...LATIN1].map((n) => [n, latin1] as const),
  ...[...ASCII].map((n) => [n, ascii] as const),
  ...[...UTF16].map((n) => [n, utf16] as const),
  ...["utf_8", "utf8", "u8", "utf", "utf8_ucs2", "utf8_ucs4", "cp65001"].map((n) =>
    [n, utf8] as const
  ),
  ["utf_8_sig", { name: "utf-8-sig", decode: (b) => utf8SigDecoder.decode(b) }],
  ...["utf_16_le", "utf_16le", "unicodelittleunmarked"].map((n) =>
    [n, { name: "utf-16-le", decode: (b: Uint8Array) => utf16leKeep.decode(b) }] as const
  ),
  ...["utf_16_be", "utf_16be", "unicodebigunmarked"].map((n) =>
    [n, { name: "utf-16-be", decode: (b: Uint8Array) => utf16beKeep.decode(b) }] as const
  ),
  ...["cp1252", "windows_1252", "1252"].map((n) => [n, cp1252] as const),
]);

/**
 * The codec Python's `bytes.decode(name)` would use, when it is one this
 * module reads exactly (see the module doc).
 *
 * @example
 * ```ts
 * import { textCodecOf } from "./text_codecs.ts";
 * textCodecOf("latin-1")?.decode(new Uint8Array([0x80])); // "\u0080", not "€"
 * textCodecOf("utf_16_le")?.decode(new Uint8Array([0x41, 0])); // "A"
 * textCodecOf("koi8-u"); // null: not read (the web's koi8-u is KOI8-RU)
 * ```
 *
 * @param name a `content-encoding`, by Python's codec names
 * @returns its codec, or null when it is not one of those read
 */
export function textCodecOf(name: string): TextCodec | null {
  return CODECS.get(pythonCodecName(name)) ?? null;
}
