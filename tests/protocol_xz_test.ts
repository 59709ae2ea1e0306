/**
 * kombu's `lzma` compression (`application/x-lzma`, Python's
 * `lzma.compress`: an .xz stream with a CRC64 check) is decoded by the
 * WebAssembly xz decoder, loaded only for a message that names it. Vectors:
 * tests/fixtures/xz/vectors.json (made by Python's lzma module) and a real
 * Celery 5.2.6 publish captured from Redis (tests/fixtures/xz/kombu_publish.json).
 */

import assert from "node:assert/strict";
import { compressionMimeType, type CompressionName } from "../protocol.ts";
import {
  codecsFor,
  decodeEnvelope,
  decodeTaskBody,
  loadCodecs,
  loadedCompression,
  ProtocolError,
} from "../protocol.ts";
import { loadedXz } from "../src/protocol/codecs.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);

interface Vector {
  name: string;
  note: string;
  xz_b64: string;
  plain_sha256?: string;
  plain_length?: number;
  plain?: string;
  python_error?: string;
}

const vectors = JSON.parse(
  Deno.readTextFileSync(new URL("xz/vectors.json", FIXTURES)),
) as { valid: Vector[]; corrupt: Vector[] };

const capture = JSON.parse(
  Deno.readTextFileSync(new URL("xz/kombu_publish.json", FIXTURES)),
) as { messages: { raw: string; body_decoded: unknown }[] };

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice()));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// Runs first: the decoder is loaded by loadCodecs({ lzma: true }) only.
Deno.test("lzma: not loaded with the other compressions, and then a ProtocolError says so", async () => {
  const needs = codecsFor("application/json", "application/x-gzip");
  assert.deepEqual(needs, { msgpack: false, compression: true, lzma: false });
  await loadCodecs(needs);
  assert.throws(() => loadedXz(), ProtocolError);
  const body = Uint8Array.fromBase64(vectors.valid[0].xz_b64);
  assert.throws(
    () => loadedCompression().decompress(body, "application/x-lzma", "t-1"),
    (err: unknown) =>
      err instanceof ProtocolError && /lzma \(xz\) support is not loaded/.test(err.message),
  );
});

Deno.test("lzma: codecsFor asks for the decoder for kombu's MIME type and its aliases", () => {
  for (const name of ["application/x-lzma", "lzma", "xz"]) {
    assert.deepEqual(codecsFor("application/json", name), {
      msgpack: false,
      compression: true,
      lzma: true,
    });
  }
  assert.equal(codecsFor("application/json", undefined).lzma, false);
  assert.equal(codecsFor("application/json", "application/x-bz2").lzma, false);
});

Deno.test("lzma: every vector Python's lzma.compress made decodes to its bytes", async () => {
  await loadCodecs({ compression: true, lzma: true });
  const { decompress } = loadedCompression();
  for (const v of vectors.valid) {
    const out = decompress(Uint8Array.fromBase64(v.xz_b64), "application/x-lzma", v.name);
    assert.equal(out.length, v.plain_length, v.name);
    assert.equal(await sha256(out), v.plain_sha256, v.name);
    if (v.plain !== undefined) assert.equal(new TextDecoder().decode(out), v.plain, v.name);
  }
});

Deno.test("lzma: the aliases kombu registers (lzma, xz) decode too", async () => {
  await loadCodecs({ compression: true, lzma: true });
  const v = vectors.valid[0];
  for (const name of ["lzma", "xz"]) {
    const out = loadedCompression().decompress(Uint8Array.fromBase64(v.xz_b64), name);
    assert.equal(new TextDecoder().decode(out), v.plain);
  }
});

Deno.test("lzma: the body of a real Celery 5.2.6 compression='lzma' publish decodes", async () => {
  const env = decodeEnvelope(capture.messages[0].raw);
  assert.equal(env.headers.compression, "application/x-lzma");
  assert.equal(new TextDecoder().decode(env.body.subarray(1, 3)), "7z", "an .xz stream");
  const needs = codecsFor(env.contentType, env.headers.compression);
  assert.equal(needs.lzma, true);
  await loadCodecs(needs);
  const body = decodeTaskBody(env, String(env.headers.id));
  const [args, kwargs] = capture.messages[0].body_decoded as [unknown[], object];
  assert.deepEqual(body.args, args);
  assert.deepEqual(body.kwargs, kwargs);
  assert.deepEqual(body.args, [1, 2]);
});

Deno.test("lzma: a corrupt body is a ProtocolError that names the compression, the task and why", async () => {
  await loadCodecs({ compression: true, lzma: true });
  const why: Record<string, RegExp> = {
    truncated: /truncated xz stream|corrupt data/,
    bad_crc64: /corrupt data or a failed integrity check/,
    flipped_data: /corrupt data or a failed integrity check/,
    not_xz: /not an xz stream/,
    raw_lzma2: /not an xz stream/,
  };
  for (const v of vectors.corrupt) {
    assert.ok(v.python_error, `${v.name}: Python refuses it too`);
    assert.throws(
      () =>
        loadedCompression().decompress(
          Uint8Array.fromBase64(v.xz_b64),
          "application/x-lzma",
          "t-7",
        ),
      (err: unknown) => {
        assert.ok(err instanceof ProtocolError, v.name);
        assert.match(err.message, /^Corrupt application\/x-lzma body: /, v.name);
        assert.match(err.message, why[v.name], v.name);
        assert.equal(err.taskId, "t-7");
        return true;
      },
    );
  }
  // The decoder goes on working after a failure.
  const ok = vectors.valid[0];
  const out = loadedCompression().decompress(Uint8Array.fromBase64(ok.xz_b64), "xz");
  assert.equal(new TextDecoder().decode(out), ok.plain);
});

Deno.test("lzma: Celeriac does not send it (no well-kept xz encoder): taskCompression 'lzma' is a TypeError", () => {
  assert.throws(() => compressionMimeType("lzma" as CompressionName), TypeError);
});
