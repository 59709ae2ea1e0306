/**
 * Where a compressed body ends, as kombu decides it (kombu.compression
 * calls Python's `zlib.decompress`, `bz2.decompress`, `lzma.decompress`):
 * bodies made by Python (several bzip2 or xz streams one after the other,
 * a stream cut short, bytes after a whole stream) are decoded by Python's
 * kombu and by Celeriac, which must give the same bytes, or refuse the body
 * when kombu raises.
 */

import assert from "node:assert/strict";
import { loadCodecs, loadedCompression, ProtocolError } from "../protocol.ts";
import { brotliCompressSync, constants, zstdCompressSync } from "node:zlib";
import { zstdFrameEnd } from "../src/protocol/zstd_frame.ts";
import { threadCpuClock } from "../src/worker/cpu_share.ts";
import { BOMBS, HEAD, MiB } from "./helpers/bombs.ts";
import { PYTHON } from "./helpers/procs.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

await loadCodecs({ compression: true, lzma: true });
const { decompress } = loadedCompression();

/**
 * One stream of one block whose data (before the Burrows-Wheeler transform)
 * is `xyAAAA`: four equal bytes, then the block ends without the count byte
 * that must follow them. No bzip2 encoder writes it (a crafted sender can);
 * its CRCs are those of `xyAAAA`.
 */
const RUN_OF_FOUR_AT_END = "QlpoOTFBWSZTWUVPU5IAAAIEgCAAAGAgACSBIAGAgAAAGBBdyRThQkEVPU5I";

/** Each case: a name, the `compression` header, and Python that makes the body from A and B. */
const CASES: [string, string, string][] = [
  ["bzip2: two streams", "application/x-bz2", "bz2.compress(A) + bz2.compress(B)"],
  [
    "bzip2: three streams",
    "application/x-bz2",
    "bz2.compress(A) + bz2.compress(b'') + bz2.compress(B)",
  ],
  ["bzip2: garbage after a stream", "application/x-bz2", "bz2.compress(A + B) + b'garbage!'"],
  [
    "bzip2: garbage after two streams",
    "application/x-bz2",
    "bz2.compress(A) + bz2.compress(B) + b'BZh9 and more junk'",
  ],
  ["bzip2: second stream cut short", "application/x-bz2", "bz2.compress(A) + bz2.compress(B)[:20]"],
  [
    "bzip2: a byte that starts a stream after one",
    "application/x-bz2",
    "bz2.compress(A + B) + b'B'",
  ],
  ["bzip2: stream cut short", "application/x-bz2", "bz2.compress(A + B)[:-3]"],
  ["bzip2: end-of-stream marker cut", "application/x-bz2", "bz2.compress(A + B)[:-8]"],
  [
    "bzip2: cut where its block ends",
    "application/x-bz2",
    "bz2.compress(b'[[1, 2], {}, {}]')[:-10]",
  ],
  ["bzip2: not bzip2", "application/x-bz2", "zlib.compress(A + B)"],
  [
    "bzip2: several 100k blocks of runs (of 4, 5 and 300 bytes) and text",
    "application/x-bz2",
    "bz2.compress(b''.join(bytes([i % 7]) * (i % 9 or 300) + A for i in range(40000)), 1)",
  ],
  [
    "bzip2: a second stream broken after its first block",
    "application/x-bz2",
    "bz2.compress(A) + (lambda s: s[:-30] + bytes(30))(bz2.compress(bytes(range(256)) * 900, 1))",
  ],
  [
    "bzip2: a block that ends in four equal bytes and no count byte (libbzip2: a data error)",
    "application/x-bz2",
    `base64.b64decode('${RUN_OF_FOUR_AT_END}')`,
  ],
  [
    "bzip2: a second stream whose block ends in four equal bytes and no count byte",
    "application/x-bz2",
    `bz2.compress(A) + base64.b64decode('${RUN_OF_FOUR_AT_END}')`,
  ],
  ["zlib: garbage after the stream", "application/x-gzip", "zlib.compress(A + B) + b'garbage'"],
  [
    "zlib: two streams (the second is ignored)",
    "application/x-gzip",
    "zlib.compress(A + B) + zlib.compress(B)",
  ],
  ["zlib: stream cut short", "application/x-gzip", "zlib.compress(A + B)[:-2]"],
  ["zlib: a gzip member", "application/x-gzip", "gzip.compress(A + B)"],
  ["lzma: two streams", "application/x-lzma", "lzma.compress(A) + lzma.compress(B)"],
  ["lzma: stream cut short", "application/x-lzma", "lzma.compress(A + B)[:-3]"],
  ["lzma: garbage after a stream", "application/x-lzma", "lzma.compress(A + B) + b'garbage'"],
  [
    "lzma: garbage after two streams",
    "application/x-lzma",
    "lzma.compress(A) + lzma.compress(B) + b'garbage that is not an xz stream'",
  ],
  [
    "lzma: a second stream broken in its block",
    "application/x-lzma",
    "lzma.compress(A) + (lambda s: s[:30] + bytes([s[30] ^ 0xff]) + s[31:])(lzma.compress(B))",
  ],
  [
    "lzma: second stream cut short",
    "application/x-lzma",
    "lzma.compress(A) + lzma.compress(B)[:-3]",
  ],
  [
    "lzma: an xz header cut short after a stream",
    "application/x-lzma",
    "lzma.compress(A) + b'\\xfd7zX'",
  ],
  ["lzma: not xz", "application/x-lzma", "zlib.compress(A + B)"],
];

const SCRIPT = `
import base64, bz2, gzip, json, lzma, sys, zlib
from kombu import compression
A, B = b'[[1, 2], ', b'{"x": 1}, {}]'
out = []
for make, mime in json.loads(sys.argv[1]):
    body = eval(make)
    try:
        out.append([base64.b64encode(body).decode(), base64.b64encode(compression.decompress(body, mime)).decode(), None])
    except Exception as e:
        out.append([base64.b64encode(body).decode(), None, type(e).__name__ + ": " + str(e)])
print(json.dumps(out))
`;

Deno.test({
  name: "compression: multi-stream, cut-short and trailing bytes decode as kombu decodes them",
  ignore: WITHOUT_CELERY,
}, async () => {
  const { stdout, stderr, success } = await new Deno.Command(PYTHON, {
    args: ["-c", SCRIPT, JSON.stringify(CASES.map(([, mime, make]) => [make, mime]))],
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr));
  const results = JSON.parse(new TextDecoder().decode(stdout)) as [
    string,
    string | null,
    string | null,
  ][];
  const text = new TextDecoder();
  CASES.forEach(([name, mime], i) => {
    const [body, python, pythonError] = results[i];
    const bytes = Uint8Array.fromBase64(body);
    if (python !== null) {
      assert.equal(
        text.decode(decompress(bytes, mime, "t-1")),
        text.decode(Uint8Array.fromBase64(python)),
        name,
      );
    } else {
      assert.throws(() => decompress(bytes, mime, "t-1"), (err: unknown) => {
        assert.ok(err instanceof ProtocolError, `${name}: ${err}`);
        assert.match(
          err.message,
          new RegExp(`^Corrupt ${mime.replace(/[/-]/g, "\\$&")} body: `),
          name,
        );
        assert.equal(err.taskId, "t-1");
        return true;
      }, `${name}: kombu raises ${pythonError}`);
    }
  });
});

Deno.test("compression: a bzip2 stream cut short says so", () => {
  // bz2.compress(b'[[1, 2], '), then cut by 8 bytes: the end-of-stream marker is missing.
  const whole = Uint8Array.fromBase64(
    "QlpoOTFBWSZTWbG+Ng4AAAOaAEAEMAAACiAAIh6R6DADIvg0XckU4UJCxvjYOA==",
  );
  assert.throws(
    () => decompress(whole.subarray(0, -8), "application/x-bz2", "t-1"),
    /^ProtocolError: Corrupt application\/x-bz2 body: compressed data ended before the end-of-stream marker was reached$/,
  );
  assert.equal(new TextDecoder().decode(decompress(whole, "bzip2")), "[[1, 2], ");
});

Deno.test("compression: a bzip2 block that ends after four equal bytes, with no count byte, is corrupt", () => {
  const bad = Uint8Array.fromBase64(RUN_OF_FOUR_AT_END);
  assert.throws(
    () => decompress(bad, "application/x-bz2", "t-1"),
    /^ProtocolError: Corrupt application\/x-bz2 body: a block ends after four equal bytes without the count byte that must follow them$/,
  );
  // After a whole stream, it is a corrupt later stream: dropped, as Python's bz2.decompress drops it.
  const ok = Uint8Array.fromBase64("QlpoOTFBWSZTWaTE8TYAAACBAAAIoAAhAIKxdyRThQkKTE8TYA=="); // bz2.compress(b'ok')
  const body = new Uint8Array([...ok, ...bad]);
  assert.equal(new TextDecoder().decode(decompress(body, "bzip2")), "ok");
});

Deno.test("compression: kombu's aliases name the codecs as its MIME types do", () => {
  // kombu.compression.register(..., aliases=[...]): what its get_decoder resolves.
  const aliases: Record<keyof typeof BOMBS, string[]> = {
    zlib: ["gzip", "zlib"],
    bzip2: ["bzip2", "bzip"],
    xz: ["lzma", "xz"],
    zstd: ["zstd", "zstandard"],
    brotli: ["brotli"],
  };
  for (const [codec, names] of Object.entries(aliases)) {
    const bomb = BOMBS[codec as keyof typeof BOMBS];
    for (const name of [bomb.mime, ...names]) {
      const out = decompress(bomb.under(), name, "t-1", MiB);
      assert.deepEqual(out.subarray(0, HEAD.length), HEAD, `${codec} as ${name}`);
    }
  }
});

Deno.test("compression: a zstd frame cut short is refused, as python-zstandard refuses it", () => {
  const text = new TextEncoder().encode(
    '[["a zstd body, long enough for a compressed block"], {}, {}]',
  );
  const frames = [
    zstdCompressSync(text), // content size and checksum flags as node:zlib sets them
    zstdCompressSync(text, { params: { [constants.ZSTD_c_checksumFlag]: 1 } }),
    zstdCompressSync(text, { params: { [constants.ZSTD_c_contentSizeFlag]: 0 } }),
    zstdCompressSync(new Uint8Array(100_000).fill(0x20)), // an RLE block
  ].map((b) => new Uint8Array(b));
  for (const frame of frames) {
    assert.equal(zstdFrameEnd(frame), frame.length);
    // Bytes after it: the frame ends where it did, and they are ignored (as by python-zstandard).
    const more = new Uint8Array([...frame, 1, 2, 3]);
    assert.equal(zstdFrameEnd(more), frame.length);
    assert.deepEqual(decompress(more, "zstd"), decompress(frame, "application/zstd"));
    for (let cut = 1; cut < frame.length; cut++) {
      assert.throws(
        () => decompress(frame.subarray(0, frame.length - cut), "application/zstd", "t-1"),
        /^ProtocolError: Corrupt application\/zstd body: compressed data ended before the end of its zstd frame$/,
        `cut by ${cut}`,
      );
    }
  }
  // Not zstd at all: the decoder says so.
  assert.throws(() => decompress(text, "zstd"), /Corrupt zstd body: Zstd decompress error/);
});

Deno.test("compression: a brotli body must be one whole stream, as Python's brotli.decompress requires", () => {
  // brotli.compress (Python's brotli 1.0.9, what kombu calls) of a task body; it refuses every cut of it.
  const python = Uint8Array.fromBase64(
    "G20A4MXaOa3fzb8wWib7ZyCKkq9nkTjlgJsHRnmQZnTSE54OHrJvUlFtiugUQaZieuagU1BPvKfrApNj8gm8b8ToRth7G5qZqcIhqtX8BA==",
  );
  const long = new Uint8Array(brotliCompressSync(new TextEncoder().encode(
    JSON.stringify([
      [Array.from({ length: 3000 }, (_, i) => `${i}:${(i * 7919) % 104729}`)],
      {},
      {},
    ]),
  )));
  for (const whole of [python, long]) {
    const text = new TextDecoder().decode(decompress(whole, "application/x-brotli"));
    assert.ok(text.startsWith("[["), text);
    for (let cut = 1; cut < whole.length; cut += cut < 100 ? 1 : 37) {
      assert.throws(
        () => decompress(whole.subarray(0, whole.length - cut), "application/x-brotli", "t-1"),
        /^ProtocolError: Corrupt application\/x-brotli body: compressed data ended before the end of its brotli stream$/,
        `cut by ${cut}`,
      );
    }
    // Bytes after the stream, or a second stream: Python's brotli raises too.
    for (const more of [[0], [1, 2, 3], [...whole]]) {
      assert.throws(
        () => decompress(new Uint8Array([...whole, ...more]), "brotli", "t-1"),
        /^ProtocolError: Corrupt brotli body: not one brotli stream: its decoder stopped after \d+ of its \d+ bytes \(corrupt data, or bytes after the end of the stream\)$/,
      );
    }
  }
  for (const garbage of [new Uint8Array(0), new TextEncoder().encode("garbage, not brotli")]) {
    assert.throws(
      () => decompress(garbage, "brotli", "t-1"),
      /^ProtocolError: Corrupt brotli body: /,
    );
  }
});

Deno.test("compression: a bzip2 body of many tiny streams decodes in about Python's time", () => {
  // bz2.compress(b'x') (Python), 27,000 times over: a 1 MB body of 37-byte streams, one block each.
  // Python's bz2.decompress takes 0.34 s of CPU; a fresh 3.6 MB block table per block took 7 s.
  const one = Uint8Array.fromBase64("QlpoOTFBWSZTWXdLsBQAAAAAgABAIAAhGEaC7kinChIO6XYCgA==");
  const body = new Uint8Array(one.length * 27_000);
  for (let at = 0; at < body.length; at += one.length) body.set(one, at);
  // This thread's CPU time, not the wall clock: other work on a busy host does not count.
  const clock = threadCpuClock() ?? (() => performance.now());
  const start = clock();
  const out = decompress(body, "application/x-bz2", "t-1");
  const ms = clock() - start;
  assert.equal(out.length, 27_000);
  assert.ok(out.every((b) => b === 0x78));
  assert.ok(ms < 2500, `${Math.round(ms)} ms of CPU (a block table per block took 7 s)`);
});
