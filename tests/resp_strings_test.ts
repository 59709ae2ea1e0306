/**
 * The take script's flat reply read from its RESP bytes (resp_strings.ts):
 * the same strings and numbers as a decode of each element, ASCII or not,
 * and strings to keep that are equal to the ones read at once.
 */

import assert from "node:assert/strict";
import { textOrNull } from "../src/broker/resp_scripts.ts";
import { listStrings, respStrings } from "../src/broker/resp_strings.ts";

const enc = new TextEncoder();
/** As ioredis decodes a bulk string (Buffer's toString): invalid bytes U+FFFD, a leading BOM kept. */
const dec = new TextDecoder("utf-8", { ignoreBOM: true });

/** The RESP bytes of an array of integers and bulk strings (given as bytes). */
function arrayReply(items: (number | Uint8Array)[]): Uint8Array {
  const parts: number[] = [...enc.encode(`*${items.length}\r\n`)];
  for (const it of items) {
    if (typeof it === "number") parts.push(...enc.encode(`:${it}\r\n`));
    else parts.push(...enc.encode(`$${it.length}\r\n`), ...it, 13, 10);
  }
  return new Uint8Array(parts);
}

const cases: Record<string, Uint8Array[]> = {
  ascii: [enc.encode("a-tag-longer-than-twelve-characters"), enc.encode('{"body": "x"}')],
  "non-ASCII": [enc.encode("tag-\u00e9\u00e9"), enc.encode('{"s": "\u{1F600} caf\u00e9"}')],
  "invalid bytes": [new Uint8Array([0x74, 0xff, 0x74]), new Uint8Array([0x7b, 0xe2, 0x82, 0x7d])],
  "a BOM": [new Uint8Array([0xef, 0xbb, 0xbf, 0x61]), enc.encode("b")],
};

for (const [name, strings] of Object.entries(cases)) {
  Deno.test(`RESP strings: ${name} elements read as a decode of each`, () => {
    const items: (number | Uint8Array)[] = [-3, ...strings, 12];
    const flat = respStrings(arrayReply(items));
    assert.equal(flat.length, items.length);
    assert.equal(flat.int(0), -3);
    assert.equal(flat.text(0), "-3");
    assert.equal(flat.int(items.length - 1), 12);
    strings.forEach((bytes, i) => {
      const want = dec.decode(bytes);
      assert.equal(flat.text(i + 1), want);
      assert.equal(flat.own(i + 1), want);
      assert.ok(flat.equals(i + 1, want));
      assert.ok(!flat.equals(i + 1, want + "x"));
      assert.ok(!flat.equals(i + 1, "?".repeat(want.length)) || want === "?".repeat(want.length));
    });
  });
}

Deno.test("RESP strings: a leading BOM of an element is kept, as ioredis and Python's kombu keep it", () => {
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, 0x61]);
  // TextDecoder's default drops it: an envelope would parse here that kombu's json.loads refuses.
  assert.equal(new TextDecoder().decode(bom), "a");
  const flat = respStrings(arrayReply([bom, enc.encode("b")]));
  assert.equal(flat.text(0), "\ufeffa");
  assert.equal(flat.own(0), "\ufeffa");
  assert.ok(flat.equals(0, "\ufeffa"));
  assert.ok(!flat.equals(0, "a"));
  assert.equal(textOrNull(bom), "\ufeffa");
});

Deno.test("RESP strings: a reply that is not a flat array of strings is refused", () => {
  assert.throws(() => respStrings(null), /expected an array reply, got nil/);
  assert.throws(() => respStrings(enc.encode("*1\r\n*0\r\n")), /got an array/);
  assert.throws(() => respStrings(enc.encode("*1\r\n$-1\r\n")), /got nil/);
});

Deno.test("RESP strings: a nil array (*-1) is refused with a TypeError, as any reply that is not an array", () => {
  assert.throws(() => respStrings(enc.encode("*-1\r\n")), {
    name: "TypeError",
    message: "expected an array reply, got a nil array",
  });
  assert.throws(() => respStrings(null), TypeError);
});

Deno.test("RESP strings: ioredis' strings read the same way", () => {
  const flat = listStrings(["-1", "tag", "{}"]);
  assert.deepEqual([flat.length, flat.int(0), flat.text(1), flat.own(2)], [3, -1, "tag", "{}"]);
  assert.ok(flat.equals(1, "tag"));
});
