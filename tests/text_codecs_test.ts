// Text codecs by Python's names (review 5 repro; Python 3 outputs in the comments).
import assert from "node:assert/strict";
const assertEquals = (a: unknown, b: unknown, m?: string) => assert.deepEqual(a, b, m);
const assertThrows = (f: () => unknown): Error => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("did not throw");
};
import { textCodecOf } from "../src/protocol/text_codecs.ts";

const dec = (name: string, bytes: number[]) => textCodecOf(name)!.decode(new Uint8Array(bytes));
// Python 3 (/usr/bin/python3): b"\xae\xbe".decode("koi8-u") == "╝╬"
Deno.test("koi8-u is not read as WHATWG's KOI8-RU", () => {
  const c = textCodecOf("koi8-u");
  if (c) assertEquals(c.decode(new Uint8Array([0xae, 0xbe])), "\u255d\u256c");
});
// Python: UnicodeDecodeError for each; the web's decoders are supersets (GB18030, UHC, Big5-HKSCS, windows-31j): refused by name
for (
  const [n, b] of [
    ["gbk", [0x80]],
    ["gb2312", [0x81, 0x40]],
    ["euc-kr", [0x81, 0x41]],
    ["big5", [0x87, 0x40]],
    ["shift_jis", [0x80]],
    ["gb18030", [0x80]],
  ] as [string, number[]][]
) {
  Deno.test(`${n} refuses ${b} as Python does`, () => {
    const c = textCodecOf(n);
    if (c) assertThrows(() => c.decode(new Uint8Array(b)));
  });
}
// Python: LookupError (no such codec); the web reads them as UTF-16LE / UTF-8
for (const n of ["unicode", "ucs-2", "csunicode", "unicode-1-1-utf-8", "iso-8859-8-i"]) {
  Deno.test(`${n} is no Python codec: refused`, () => assertEquals(textCodecOf(n), null));
}
// Python reads these: so do we
for (const n of ["utf_8", "u8", "utf_16_le", "utf-8-sig"]) {
  Deno.test(`${n} is a Python codec: accepted`, () => assertEquals(textCodecOf(n) !== null, true));
}
// Python: UnicodeDecodeError (undefined in its cp125x); the web reads C1 controls: the name is refused, or decoding throws
for (
  const [n, b] of [["cp1250", 0x81], ["windows-1251", 0x98], ["cp1254", 0x8e], [
    "cp1258",
    0x8a,
  ]] as [string, number][]
) {
  Deno.test(`${n} refuses its undefined byte ${b} as Python does`, () => {
    const c = textCodecOf(n);
    if (c) assert.throws(() => c.decode(new Uint8Array([b])));
  });
}

Deno.test("the codecs read decode as Python's", () => {
  assertEquals(dec("utf_8", [0xef, 0xbb, 0xbf, 0x41]), "\ufeffA");
  assertEquals(dec("utf-8-sig", [0xef, 0xbb, 0xbf, 0x41]), "A");
  assertEquals(dec("UTF-16-LE", [0xff, 0xfe, 0x41, 0]), "\ufeffA");
  assertEquals(dec("utf_16_be", [0, 0x41]), "A");
  assertEquals(dec("utf-16", [0xfe, 0xff, 0, 0x41]), "A");
  assertEquals(dec("Latin 1", [0x80]), "\u0080");
  assertEquals(dec("windows-1252", [0x80]), "\u20ac");
  assertThrows(() => dec("cp1252", [0x81]));
  assertThrows(() => dec("us-ascii", [0x80]));
  assertEquals(textCodecOf("cp1251"), null);
});
