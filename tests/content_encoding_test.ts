/**
 * A body's content-encoding, read as kombu reads it (checked with kombu
 * 5.2's `serialization.loads`): a JSON body goes to the JSON decoder, which
 * reads UTF-8 whatever the content-encoding says (`latin-1`, `x-nope`: the
 * same list); a text body of a content type without a serializer
 * (`application/data`) is decoded with its content-encoding, and one kombu
 * does not know is refused ("DecodeError: unknown encoding: x-nope").
 * Before, every text body was read as UTF-8, whatever it named.
 */

import assert from "node:assert/strict";
import { deserialize, ProtocolError } from "../protocol.ts";

const e9 = new Uint8Array([0xe9]); // "é" in latin-1, invalid UTF-8
const json = new TextEncoder().encode('["\u00e9"]');

Deno.test("content-encoding: a JSON body is read as UTF-8 whatever it names, as kombu reads it", () => {
  for (const encoding of ["utf-8", "latin-1", "binary", "x-nope"]) {
    assert.deepEqual(deserialize(json, "application/json", encoding), ["\u00e9"], encoding);
  }
});

Deno.test("content-encoding: a text body is decoded with its content-encoding; an unknown one is refused by name", () => {
  assert.equal(deserialize(e9, "application/data", "latin-1"), "\u00e9");
  assert.equal(deserialize(e9, "text/plain", "ISO-8859-1"), "\u00e9");
  assert.equal(deserialize(new Uint8Array([0xe9, 0]), "application/data", "utf-16le"), "\u00e9");
  assert.equal(deserialize(json, "application/data", "utf-8"), '["\u00e9"]');
  assert.throws(
    () => deserialize(new TextEncoder().encode("x"), "application/data", "x-nope", "t-1"),
    (err: unknown) =>
      err instanceof ProtocolError && err.taskId === "t-1" &&
      err.message ===
        'Body has content-encoding "x-nope", which is not supported: send utf-8 (also read: ' +
          "utf-8-sig, utf-16, utf-16-le, utf-16-be, latin-1, ascii, cp1252)",
  );
  assert.throws(
    () => deserialize(e9, "application/data", "utf-8"),
    /^ProtocolError: Body is not valid UTF-8 \(content-encoding utf-8\)$/,
  );
});

Deno.test("content-encoding: latin-1, ascii and utf-16 decode as Python's codecs, not as the web's labels", () => {
  const x80 = new Uint8Array([0x80]);
  // Python: b"\x80".decode("latin-1") == "\x80"; the web's latin1 label is windows-1252 ("€").
  for (const encoding of ["latin-1", "latin1", "ISO-8859-1", "iso_8859-1:1987", "l1", "latin"]) {
    assert.equal(deserialize(x80, "text/plain", encoding), "\u0080", encoding);
  }
  // Python: b"\xe9".decode("ascii") raises; the web's ascii label is windows-1252.
  for (const encoding of ["ascii", "US-ASCII", "646"]) {
    assert.throws(
      () => deserialize(e9, "text/plain", encoding),
      /^ProtocolError: Body is not valid ascii \(content-encoding /,
      encoding,
    );
    assert.equal(deserialize(new Uint8Array([0x41]), "text/plain", encoding), "A");
  }
  assert.equal(deserialize(x80, "text/plain", "cp1252"), "\u20ac");
  assert.throws(
    () => deserialize(new Uint8Array([0x81]), "text/plain", "windows-1252"),
    /not valid cp1252/,
  );
  // Python's utf-16 reads the BOM's byte order and drops it; utf-16le keeps it, as its utf-8 does.
  const bom = (...b: number[]) => new Uint8Array(b);
  assert.equal(deserialize(bom(0xfe, 0xff, 0, 0x41), "text/plain", "utf-16"), "A");
  assert.equal(deserialize(bom(0xff, 0xfe, 0x41, 0), "text/plain", "UTF16"), "A");
  assert.equal(deserialize(bom(0xff, 0xfe, 0x41, 0), "text/plain", "utf-16le"), "\ufeffA");
  // Names the web reads as another code page than Python's are refused, not misread.
  // Other names are refused by name, whatever the web reads them as.
  for (const encoding of ["iso-8859-9", "x-cp1252", "iso88591", "tis-620", "koi8-u", "gbk"]) {
    assert.throws(() => deserialize(x80, "text/plain", encoding), /is not supported/, encoding);
  }
});
