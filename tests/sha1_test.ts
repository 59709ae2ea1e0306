/**
 * sha1Hex, the name `EVALSHA` gives a Lua script, computed without
 * `node:crypto`: the same digest as Node's for the FIPS 180 examples, the
 * padding's edges (55, 56 and 64 bytes: the length fits in the last block
 * or needs one more), multi-byte UTF-8, a long text and Celeriac's scripts.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha1Hex } from "../src/broker/sha1.ts";
import * as scripts from "../src/broker/redis_scripts.ts";

Deno.test("sha1Hex gives the SHA-1 of a text's UTF-8 bytes", () => {
  assert.equal(sha1Hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  assert.equal(sha1Hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  assert.equal(
    sha1Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
  );
  const texts = [
    "return 1",
    ..."x".repeat(130).split("").map((_, i) => "a".repeat(i)),
    "é漢字🙂".repeat(100),
    "z".repeat(1_000_000),
    ...Object.values(scripts).filter((v): v is string => typeof v === "string"),
  ];
  for (const text of texts) {
    assert.equal(sha1Hex(text), createHash("sha1").update(text).digest("hex"), text.slice(0, 40));
  }
});
