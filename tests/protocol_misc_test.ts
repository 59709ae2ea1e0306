/**
 * Serializers, compression, Python repr and ISO dates of src/protocol,
 * with the Celery 5.2.6 capture bodies where there is one.
 */

import assert from "node:assert/strict";
import { brotliCompressSync, zstdCompressSync } from "node:zlib";
import { compress, decompress } from "../src/protocol/compression.ts";
import { compressionMimeType, type CompressionName } from "../src/protocol/compression_names.ts";
import { ContentDisallowedError, EncodeError, ProtocolError } from "../src/protocol/errors.ts";
import { argsRepr, kwargsRepr, pyRepr, REPR_MAXSIZE } from "../src/protocol/repr.ts";
import {
  CONTENT_TYPES,
  deserialize,
  serialize,
  type SerializerName,
} from "../src/protocol/serializers.ts";
import { parsePyDate, pyIsoFormat } from "../src/protocol/time.ts";
import { codecsForOptions, loadCodecs } from "../src/protocol/codecs.ts";

await loadCodecs({ msgpack: true, compression: true });

const FIXTURES = new URL("./fixtures/celery-5.2/", import.meta.url);

/** Body bytes of the first message of a redis/publish capture. */
function capturedBody(scenario: string): { body: Uint8Array; env: Record<string, unknown> } {
  const fx = JSON.parse(
    Deno.readTextFileSync(new URL(`redis/publish/${scenario}.json`, FIXTURES)),
  ) as { messages: { raw: string }[] };
  const env = JSON.parse(fx.messages[0].raw);
  return { body: Uint8Array.fromBase64(env.body), env };
}

const utf8 = new TextEncoder();
const text = new TextDecoder();
const PLAIN_BODY =
  '[[1, 2], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]';
const PLAIN_VALUE = [[1, 2], {}, { callbacks: null, errbacks: null, chain: null, chord: null }];

// ---------------------------------------------------------------------------
// serializers

Deno.test("serialize json: Python-formatted UTF-8 bytes, application/json, utf-8", () => {
  const s = serialize(PLAIN_VALUE);
  assert.equal(s.contentType, "application/json");
  assert.equal(s.contentEncoding, "utf-8");
  assert.equal(text.decode(s.body), PLAIN_BODY);
  assert.deepEqual(deserialize(s.body, s.contentType, s.contentEncoding), PLAIN_VALUE);
  assert.deepEqual(CONTENT_TYPES, { json: "application/json", msgpack: "application/x-msgpack" });
});

Deno.test("serialize msgpack: identical bytes to Python msgpack for the captured body", () => {
  const { body, env } = capturedBody("serializer_msgpack");
  assert.equal(env["content-type"], "application/x-msgpack");
  const s = serialize(PLAIN_VALUE, "msgpack");
  assert.equal(s.contentType, "application/x-msgpack");
  assert.equal(s.contentEncoding, "binary");
  assert.equal(s.body.toBase64(), body.toBase64());
});

Deno.test("deserialize msgpack: the captured Python body decodes", () => {
  const { body } = capturedBody("serializer_msgpack");
  assert.deepEqual(deserialize(body, "application/x-msgpack", "binary"), PLAIN_VALUE);
});

Deno.test("msgpack round trip keeps strings, floats, nesting, bigint and Uint8Array", () => {
  const value = {
    ints: [0, -1, 127, 128, 65536, -(2 ** 31), 2 ** 40],
    float: 2.5,
    str: "h\u00e9llo \u2603",
    nil: null,
    flags: [true, false],
    nested: { a: [{ b: [] }] },
    big: [2n ** 63n, -(2n ** 63n), 2n ** 64n - 1n],
    smallBig: 5n,
    bytes: new Uint8Array([0, 1, 255]),
  };
  const s = serialize(value, "msgpack");
  const back = deserialize(s.body, s.contentType, s.contentEncoding) as Record<string, unknown>;
  assert.deepEqual(back, {
    ...value,
    // 64-bit integers in the double-safe range come back as numbers.
    smallBig: 5,
  });
  assert.ok(back.bytes instanceof Uint8Array);
  assert.equal(typeof (back.big as unknown[])[0], "bigint");
  assert.equal(typeof (back.ints as unknown[])[6], "number");
});

Deno.test("msgpack: Date as ISO text, undefined dropped, Map/Set and >64-bit integers refused", () => {
  const s = serialize({ at: new Date("2026-01-02T03:04:05.600Z"), gone: undefined }, "msgpack");
  assert.deepEqual(deserialize(s.body, s.contentType, s.contentEncoding), {
    at: "2026-01-02T03:04:05.600000Z",
  });
  assert.throws(() => serialize([new Map()], "msgpack"), EncodeError);
  assert.throws(() => serialize({ s: new Set([1]) }, "msgpack"), EncodeError);
  // Python's msgpack raises OverflowError; silently wrapping would corrupt the value.
  assert.throws(() => serialize([2n ** 64n], "msgpack"), EncodeError);
  assert.throws(() => serialize({ n: -(2n ** 63n) - 1n }, "msgpack"), EncodeError);
});

Deno.test("serialize: an unknown serializer name is a TypeError", () => {
  assert.throws(() => serialize([], "yaml" as SerializerName), TypeError);
});

Deno.test("deserialize: pickle, yaml and unknown types are refused with ContentDisallowedError", () => {
  for (const ct of ["application/x-python-serialize", "application/x-yaml", "application/bson"]) {
    assert.throws(
      () => deserialize(new Uint8Array([0x80]), ct, "binary", "task-1"),
      (err: unknown) =>
        err instanceof ContentDisallowedError && err.contentType === ct &&
        err.taskId === "task-1" &&
        err.message.includes(ct) && err.message.includes("task-1"),
    );
  }
  const { body } = capturedBody("serializer_yaml");
  assert.throws(() => deserialize(body, "application/x-yaml", "utf-8"), ContentDisallowedError);
});

Deno.test("deserialize: text/plain and application/data are trusted text; bad bytes are ProtocolErrors", () => {
  assert.equal(deserialize(utf8.encode("h\u00e9"), "text/plain", "utf-8"), "h\u00e9");
  assert.equal(deserialize(utf8.encode("[1]"), "application/data", "binary"), "[1]");
  assert.throws(
    () => deserialize(new Uint8Array([0xff, 0xfe]), "application/json", "utf-8", "t"),
    (err: unknown) =>
      err instanceof ProtocolError && err.taskId === "t" && /UTF-8/.test(err.message),
  );
  assert.throws(
    () => deserialize(utf8.encode("[1,"), "application/json", "utf-8"),
    /not valid JSON/,
  );
  assert.throws(
    () => deserialize(new Uint8Array([0xc1]), "application/x-msgpack", "binary"),
    /not valid msgpack/,
  );
});

// ---------------------------------------------------------------------------
// compression

Deno.test("decompress: the captured zlib (application/x-gzip) body", () => {
  const { body, env } = capturedBody("compression_zlib");
  assert.equal((env.headers as Record<string, unknown>).compression, "application/x-gzip");
  assert.deepEqual([...body.subarray(0, 2)], [0x78, 0x9c], "a zlib stream, not a gzip file");
  assert.equal(text.decode(decompress(body, "application/x-gzip")), PLAIN_BODY);
});

Deno.test("decompress: the captured bzip2 (application/x-bz2) body", () => {
  const { body, env } = capturedBody("compression_bzip2");
  assert.equal((env.headers as Record<string, unknown>).compression, "application/x-bz2");
  assert.equal(text.decode(body.subarray(0, 3)), "BZh");
  assert.equal(text.decode(decompress(body, "application/x-bz2")), PLAIN_BODY);
});

Deno.test("compress zlib/gzip: a zlib stream under application/x-gzip that round-trips", () => {
  for (const name of ["zlib", "gzip"] as const) {
    assert.equal(compressionMimeType(name), "application/x-gzip");
    const packed = compress(utf8.encode(PLAIN_BODY), name);
    assert.equal(packed[0], 0x78);
    assert.equal(text.decode(decompress(packed, "application/x-gzip")), PLAIN_BODY);
  }
  assert.throws(() => compressionMimeType("lzma" as CompressionName), TypeError);
  assert.throws(() => compress(new Uint8Array(1), "bzip2" as CompressionName), TypeError);
});

Deno.test("decompress: brotli and zstd bodies are read", () => {
  const raw = utf8.encode(PLAIN_BODY);
  assert.equal(
    text.decode(decompress(new Uint8Array(brotliCompressSync(raw)), "application/x-brotli")),
    PLAIN_BODY,
  );
  assert.equal(
    text.decode(decompress(new Uint8Array(zstdCompressSync(raw)), "application/zstd")),
    PLAIN_BODY,
  );
});

Deno.test("decompress: an unknown compression is a ProtocolError naming it", () => {
  assert.throws(
    () => decompress(new Uint8Array([1, 2]), "application/x-lz4", "t-9"),
    (err: unknown) =>
      err instanceof ProtocolError && err.message.includes("application/x-lz4") &&
      // What to change, in the names a Celery user knows (before: "publish with one of those").
      /task_compression setting or compression= call option/.test(err.message) &&
      err.taskId === "t-9",
  );
});

Deno.test("decompress: corrupt zlib and bzip2 data are ProtocolErrors", () => {
  const { body } = capturedBody("compression_zlib");
  const truncated = body.subarray(0, body.length - 6);
  assert.throws(
    () => decompress(truncated, "application/x-gzip", "t-1"),
    (err: unknown) =>
      err instanceof ProtocolError && /Corrupt application\/x-gzip/.test(err.message) &&
      err.taskId === "t-1",
  );
  assert.throws(() => decompress(utf8.encode("not zlib"), "application/x-gzip"), ProtocolError);
  assert.throws(() => decompress(utf8.encode("not bz2"), "application/x-bz2"), ProtocolError);
});

// ---------------------------------------------------------------------------
// repr (argsrepr / kwargsrepr)

Deno.test("codecsForOptions: a send's serializer and compression, else the sender's defaults", () => {
  assert.deepEqual(codecsForOptions({}), { msgpack: false, compression: false });
  assert.deepEqual(codecsForOptions({ serializer: "msgpack", compression: "gzip" }), {
    msgpack: true,
    compression: true,
  });
  assert.deepEqual(codecsForOptions({ compression: "" }), { msgpack: false, compression: false });
  const defaults = { serializer: "msgpack", compression: "zstd" };
  assert.deepEqual(codecsForOptions({}, defaults), { msgpack: true, compression: true });
  assert.deepEqual(codecsForOptions({ serializer: "json", compression: null }, defaults), {
    msgpack: false,
    compression: true, // null is no option given: the default applies
  });
});

Deno.test("argsRepr: Python tuple reprs (2, 3), (7,), ()", () => {
  assert.equal(argsRepr([2, 3]), "(2, 3)");
  assert.equal(argsRepr([7]), "(7,)");
  assert.equal(argsRepr([]), "()");
});

Deno.test("kwargsRepr: Python dict reprs", () => {
  assert.equal(kwargsRepr({ x: 1, y: 2 }), "{'x': 1, 'y': 2}");
  assert.equal(kwargsRepr({}), "{}");
  assert.equal(kwargsRepr({ "it's": "v" }), `{"it's": 'v'}`);
});

Deno.test("repr strings: Python picks the quote style and escapes like repr()", () => {
  // CPython: repr("it's"), repr('say "hi"'), repr('both \' and "'), repr('a\\b'), ...
  assert.equal(argsRepr(["it's"]), `("it's",)`);
  assert.equal(argsRepr(['say "hi"']), `('say "hi"',)`);
  assert.equal(argsRepr([`both ' and "`]), `('both \\' and "',)`);
  assert.equal(argsRepr(["a\\b"]), `('a\\\\b',)`);
  assert.equal(argsRepr(["a\nb\tc\r\x00\x7f"]), `('a\\nb\\tc\\r\\x00\\x7f',)`);
  assert.equal(argsRepr(["h\u00e9llo \u2603"]), "('h\u00e9llo \u2603',)");
});

Deno.test("repr strings: every character str.isprintable() rejects is escaped as repr() does", () => {
  // Each expected text is /usr/bin/python3 3.11's repr() of the same string.
  const cases: [string, string][] = [
    ["a\x85b\x9bc\xa0", String.raw`'a\x85b\x9bc\xa0'`], // C1 controls, no-break space
    ["safe\u202etxt.exe", String.raw`'safe\u202etxt.exe'`], // bidi override ("Trojan Source")
    ["line\u2028sep\u2029", String.raw`'line\u2028sep\u2029'`],
    ["\ufeffbom\u200b", String.raw`'\ufeffbom\u200b'`],
    ["a\\b\u00ad", String.raw`'a\\b\xad'`], // soft hyphen (Cf)
    ["tag \u{e0001} pua \ue000 \u{f0000}", String.raw`'tag \U000e0001 pua \ue000 \U000f0000'`],
    ["lone \ud800 x", String.raw`'lone \ud800 x'`],
    ["\u3000ideo\u2009thin", String.raw`'\u3000ideo\u2009thin'`], // Zs other than " "
    ["\u0378 unassigned", String.raw`'\u0378 unassigned'`],
    ["emoji \u{1f600} \u4e2d\u6587", "'emoji \u{1f600} \u4e2d\u6587'"], // printable: kept
    ["it\u2019s", "'it\u2019s'"],
    ["it's \u202e", String.raw`"it's \u202e"`], // the quote rules are unchanged
    ['say "hi" \x9b', String.raw`'say "hi" \x9b'`],
    [`both ' and " \u2066`, String.raw`'both \' and " \u2066'`],
  ];
  for (const [value, repr] of cases) assert.equal(pyRepr(value), repr);
  assert.equal(
    argsRepr(cases.slice(0, 3).map(([value]) => value)),
    String.raw`('a\x85b\x9bc\xa0', 'safe\u202etxt.exe', 'line\u2028sep\u2029')`,
  );
  assert.equal(kwargsRepr({ "k\u202e": "v\x9b" }), String.raw`{'k\u202e': 'v\x9b'}`);
});

Deno.test("repr: None/True/False, nan/inf, bigint and nesting", () => {
  assert.equal(argsRepr([null, true, false, undefined]), "(None, True, False, None)");
  assert.equal(argsRepr([NaN, Infinity, -Infinity]), "(nan, inf, -inf)");
  assert.equal(argsRepr([2n ** 64n, -7, 2.5]), "(18446744073709551616, -7, 2.5)");
  assert.equal(argsRepr([[1, { a: [null, true] }, "x"]]), "([1, {'a': [None, True]}, 'x'],)");
  const self: unknown[] = [];
  self.push(self);
  assert.equal(argsRepr([self]), "([[...]],)");
});

Deno.test("repr: the mixed_types capture's argsrepr and kwargsrepr are reproduced", () => {
  const { env } = capturedBody("mixed_types");
  const h = env.headers as Record<string, string>;
  assert.equal(
    argsRepr([1, 2.5, "str", null, true, [1, "a"], { k: "v" }, "h\u00e9llo \u2603"]),
    h.argsrepr,
  );
  assert.equal(kwargsRepr({ big: 1099511627776, neg: -7 }), h.kwargsrepr);
});

Deno.test("repr: truncated to 1024 characters ending in '...'", () => {
  assert.equal(REPR_MAXSIZE, 1024);
  const a = argsRepr(["x".repeat(2000)]);
  assert.equal(a.length, 1024);
  assert.ok(a.startsWith("('xxx"));
  assert.ok(a.endsWith("x..."));
  const k = kwargsRepr({ long: "y".repeat(5000) });
  assert.equal(k.length, 1024);
  assert.ok(k.endsWith("..."));
  // Exactly at the limit: untouched.
  const exact = argsRepr(["z".repeat(1024 - 5)]);
  assert.equal(exact.length, 1024);
  assert.ok(exact.endsWith("',)"));
  // A custom maxsize.
  assert.equal(argsRepr([1, 2, 3, 4, 5], 8), "(1, 2...");
});

// ---------------------------------------------------------------------------
// time

Deno.test("pyIsoFormat: Python isoformat with Z, +00:00 or no suffix", () => {
  const d = new Date("2026-01-02T03:04:05.600Z");
  assert.equal(pyIsoFormat(d, "Z"), "2026-01-02T03:04:05.600000Z");
  assert.equal(pyIsoFormat(d, "+00:00"), "2026-01-02T03:04:05.600000+00:00");
  assert.equal(pyIsoFormat(d, ""), "2026-01-02T03:04:05.600000");
  // Microseconds only when non-zero.
  assert.equal(
    pyIsoFormat(new Date("2030-01-01T12:00:00Z"), "+00:00"),
    "2030-01-01T12:00:00+00:00",
  );
  assert.equal(pyIsoFormat(new Date("2030-01-01T12:00:00.001Z"), ""), "2030-01-01T12:00:00.001000");
  // Four-digit years, zero-padded fields.
  assert.equal(pyIsoFormat(new Date(Date.UTC(999, 0, 2, 3, 4, 5)), ""), "0999-01-02T03:04:05");
  assert.throws(() => pyIsoFormat(new Date("nope"), "Z"), EncodeError);
});

Deno.test("parsePyDate: offsets, Z, µs truncated to ms, naive read as UTC", () => {
  assert.equal(
    parsePyDate("2026-11-24T02:47:40.140170+00:00").toISOString(),
    "2026-11-24T02:47:40.140Z",
  );
  assert.equal(
    parsePyDate("2026-11-24T02:47:40.999999Z").toISOString(),
    "2026-11-24T02:47:40.999Z",
  );
  assert.equal(parsePyDate("2026-01-02T03:04:05+02:00").toISOString(), "2026-01-02T01:04:05.000Z");
  assert.equal(parsePyDate("2026-01-02T03:04:05-05:30").toISOString(), "2026-01-02T08:34:05.000Z");
  // Naive (Celery 5.2 date_done, naive eta): UTC, whatever the local zone.
  assert.equal(parsePyDate("2030-01-01T12:00:00").toISOString(), "2030-01-01T12:00:00.000Z");
  assert.equal(parsePyDate("2026-11-24T02:49:22.439060").toISOString(), "2026-11-24T02:49:22.439Z");
  assert.ok(Number.isNaN(parsePyDate("not a date").getTime()));
});

Deno.test("pyIsoFormat / parsePyDate round trip for every suffix", () => {
  const dates = [
    new Date("2026-11-24T02:47:40.140Z"),
    new Date("2030-01-01T00:00:00Z"),
    new Date("1999-12-31T23:59:59.999Z"),
    new Date(0),
  ];
  for (const d of dates) {
    for (const suffix of ["Z", "+00:00", ""] as const) {
      const s = pyIsoFormat(d, suffix);
      assert.equal(parsePyDate(s).getTime(), d.getTime(), s);
    }
  }
});
