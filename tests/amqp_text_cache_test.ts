/**
 * The short-string cache of the AMQP frame reader gives the text
 * `Buffer.toString` gives for any bytes, cached or not, whatever else
 * shares its slot.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { CACHED_BYTES, utf8At } from "../src/broker/amqp_text_cache.ts";

Deno.test("amqp text cache: every string reads as Buffer.toString reads it, again and again", () => {
  const texts = ["", "a", "b", "ab", "ba", "lang", "task", "celery", "application/json", "utf-8"];
  for (let i = 0; i < 3000; i++) texts.push(`k${i}`, `v${i % 97}x${i}`);
  texts.push("añadir", "x".repeat(CACHED_BYTES), "y".repeat(CACHED_BYTES + 1));
  for (let round = 0; round < 3; round++) {
    for (const t of texts) {
      const buf = Buffer.from(`..${t}..`);
      assert.equal(utf8At(buf, 2, buf.length - 4), t);
    }
  }
});

Deno.test("amqp text cache: invalid UTF-8 decodes as Buffer.toString decodes it", () => {
  for (const bytes of [[0xff], [0xc3], [0x61, 0xe2, 0x82], [0xed, 0xa0, 0x80]]) {
    const buf = Buffer.from([0x20, ...bytes]);
    const expected = buf.toString("utf8", 1, buf.length);
    assert.equal(utf8At(buf, 1, bytes.length), expected);
    assert.equal(utf8At(buf, 1, bytes.length), expected, "from the cache");
  }
});

Deno.test("amqp text cache: strings of the same length and edges are told apart", () => {
  // Same length, first, middle and last byte: the same slot; each must still read as itself.
  const a = Buffer.from("aXbYc");
  const b = Buffer.from("aZbWc");
  for (let i = 0; i < 4; i++) {
    assert.equal(utf8At(a, 0, 5), "aXbYc");
    assert.equal(utf8At(b, 0, 5), "aZbWc");
  }
});
