/**
 * Decompression bombs: a compressed body is decoded up to a size limit
 * (`maxSize`, default MAX_DECOMPRESSED_SIZE) and refused with a
 * ProtocolError naming it as soon as the output passes it, for every codec;
 * a body of exactly the limit decodes. The xz decoder's wasm instance, whose
 * memory a preset-9 stream grows to 64 MiB, is replaced after such a stream.
 */

import assert from "node:assert/strict";
import { brotliCompressSync, deflateSync, zstdCompressSync } from "node:zlib";
import {
  decodeTaskBody,
  loadCodecs,
  loadedCompression,
  MAX_DECOMPRESSED_SIZE,
  ProtocolError,
} from "../protocol.ts";
import { xzMemory } from "../src/protocol/xz.ts";
import { BOMBS, HEAD, MiB, padded, UNDER } from "./helpers/bombs.ts";

await loadCodecs({ compression: true, lzma: true });
const { decompress } = loadedCompression();

const tooLarge = (mime: string, limit: string) => (err: unknown) => {
  assert.ok(err instanceof ProtocolError, String(err));
  assert.equal(err.taskId, "t-bomb");
  assert.equal(
    err.message,
    `Decompressed ${mime} body is over the ${limit} limit: refused (a decompression bomb, or a ` +
      `larger body than this worker accepts: raise its maxDecompressedSize option, ` +
      `--max-decompressed-size on the command line)`,
  );
  return true;
};

for (const [name, bomb] of Object.entries(BOMBS)) {
  Deno.test(`bomb ${name}: refused past the limit, having decoded no more than it`, () => {
    const body = bomb.over();
    assert.ok(body.length < 70_000, `${body.length} bytes on the wire`);
    assert.throws(() => decompress(body, bomb.mime, "t-bomb", MiB), tooLarge(bomb.mime, "1 MiB"));
  });

  Deno.test(`bomb ${name}: a body just under the limit is decoded whole`, () => {
    const body = decodeTaskBody(
      {
        body: bomb.under(),
        contentType: "application/json",
        contentEncoding: "utf-8",
        headers: { compression: bomb.mime },
      },
      "t-under",
      MiB,
    );
    assert.deepEqual(body.args, [1, 2]);
    // Over it by one byte: refused.
    assert.throws(
      () =>
        decodeTaskBody(
          {
            body: bomb.under(),
            contentType: "application/json",
            contentEncoding: "utf-8",
            headers: { compression: bomb.mime },
          },
          "t-bomb",
          UNDER - 1,
        ),
      tooLarge(bomb.mime, `${(UNDER - 1).toLocaleString("en-US")}-byte`),
    );
  });
}

Deno.test("bomb: the default limit is 64 MiB, an output of exactly that is decoded", () => {
  assert.equal(MAX_DECOMPRESSED_SIZE, 64 * MiB);
  const exact = padded(64 * MiB);
  assert.equal(
    decompress(new Uint8Array(deflateSync(exact)), "application/x-gzip").length,
    64 * MiB,
  );
  const over = new Uint8Array(deflateSync(padded(64 * MiB + 1)));
  assert.throws(() => decompress(over, "zlib", "t-bomb"), tooLarge("zlib", "64 MiB"));
  const brotli = new Uint8Array(brotliCompressSync(padded(64 * MiB + 1)));
  assert.throws(() => decompress(brotli, "brotli", "t-bomb"), tooLarge("brotli", "64 MiB"));
  const zstd = new Uint8Array(zstdCompressSync(padded(64 * MiB + 1)));
  assert.throws(() => decompress(zstd, "zstd", "t-bomb"), tooLarge("zstd", "64 MiB"));
  assert.equal(HEAD.length, 16);
});

Deno.test("bomb bzip2: an output of exactly the limit is decoded, one byte more is refused", () => {
  // Python's bz2.compress of each. A block holds a count byte after every four equal bytes
  // (0 to 255 more of them), so a block's output may be shorter than the block.
  const bodies: [string, string][] = [
    ["xyz * 100 + AAAA", "QlpoOTFBWSZTWS0Y2zMAADREgEAAIAAAcCAAMM0AUommHEW+IuIvi7kinChIFoxtmYA="],
    ["AAAA", "QlpoOTFBWSZTWeFuZXEAAAJEAEAAIAAgACEAggsXckU4UJDhbmVx"],
    ["A * 300", "QlpoOTFBWSZTWQxvuBUAAAKUAIAgIAAACCAAIKptQZjFR4u5IpwoSAY33AqA"],
    [
      "[[1, 2], {}, {}] + ab * 40 + 40 spaces",
      "QlpoOTFBWSZTWWtAxSQAAAcbgEQEMAAACjAAAAogADEA000CRRo2ppGtp1eSncqJIO+ARZh8XckU4UJBrQMUkA==",
    ],
  ];
  for (const [name, base64] of bodies) {
    const body = Uint8Array.fromBase64(base64);
    const size = decompress(body, "bzip2").length;
    assert.equal(decompress(body, "bzip2", "t-bomb", size).length, size, name);
    assert.throws(
      () => decompress(body, "bzip2", "t-bomb", size - 1),
      tooLarge("bzip2", `${(size - 1).toLocaleString("en-US")}-byte`),
      name,
    );
  }
});

Deno.test("xz: the decoder is replaced after a preset-9 stream, and its 64 MiB go with it", async () => {
  const vectors = JSON.parse(
    Deno.readTextFileSync(new URL("./fixtures/xz/vectors.json", import.meta.url)),
  ) as { valid: { name: string; xz_b64: string }[] };
  const preset9 = Uint8Array.fromBase64(vectors.valid.find((v) => v.name === "preset9e")!.xz_b64);
  decompress(preset9, "application/x-lzma");
  assert.ok(xzMemory() >= 64 * MiB, `${xzMemory()} bytes after a 64 MiB dictionary`);
  await loadCodecs({ lzma: true }); // waits for the new instance
  const fresh = xzMemory();
  assert.ok(fresh < MiB, `${fresh} bytes`);
  // The new instance decodes as the old one did.
  const out = decompress(preset9, "xz");
  assert.ok(out.length > 0);
  await loadCodecs({ lzma: true });
  // A default-preset stream (8 MiB dictionary) keeps its instance.
  decompress(BOMBS.xz.under(), "xz");
  const kept = xzMemory();
  assert.ok(kept > fresh && kept < 16 * MiB, `${kept}`);
  await loadCodecs({ lzma: true });
  assert.equal(xzMemory(), kept);
});
