/**
 * pyJsonDumps / pyJsonLoads: JSON as Python's `json` module (kombu) writes
 * and reads it. Expected strings were produced with CPython's json.dumps.
 */

import assert from "node:assert/strict";
import { EncodeError, ProtocolError } from "../src/protocol/errors.ts";
import { pyJsonDumps, pyJsonDumpsRecords, pyJsonLoads } from "../src/protocol/json.ts";

const FIXTURES = new URL("./fixtures/celery-5.2/", import.meta.url);

// ---------------------------------------------------------------------------
// Python formatting

Deno.test("pyJsonDumps uses Python's separators ', ' and ': '", () => {
  assert.equal(
    pyJsonDumps({ a: [1, 2.5, null, true, false, "x"], b: {} }),
    '{"a": [1, 2.5, null, true, false, "x"], "b": {}}',
  );
  assert.equal(pyJsonDumps([]), "[]");
  assert.equal(pyJsonDumps({}), "{}");
  assert.equal(pyJsonDumps([[2, 3], {}]), "[[2, 3], {}]");
});

Deno.test("pyJsonDumps NaN/Infinity/-Infinity as bare tokens; pyJsonLoads reads them back", () => {
  assert.equal(pyJsonDumps([NaN, Infinity, -Infinity]), "[NaN, Infinity, -Infinity]");
  const back = pyJsonLoads("[NaN, Infinity, -Infinity]") as number[];
  assert.ok(Number.isNaN(back[0]));
  assert.equal(back[1], Infinity);
  assert.equal(back[2], -Infinity);
  // Also inside objects and next to other values (tolerant parser path).
  assert.deepEqual(pyJsonLoads('{"x": -Infinity, "y": [1, "NaN"], "z": null}'), {
    x: -Infinity,
    y: [1, "NaN"],
    z: null,
  });
  assert.ok(Number.isNaN((pyJsonLoads('{"v": NaN}') as { v: number }).v));
});

Deno.test("pyJsonDumps floats like Python's float repr", () => {
  // CPython: json.dumps([0.1, 1e-05, 1e-07, 1.5e-10, 0.0001, 1e21, 1e100, 5e-324, 123.456])
  assert.equal(
    pyJsonDumps([0.1, 1e-5, 1e-7, 1.5e-10, 0.0001, 1e21, 1e100, 5e-324, 123.456]),
    "[0.1, 1e-05, 1e-07, 1.5e-10, 0.0001, 1e+21, 1e+100, 5e-324, 123.456]",
  );
  assert.equal(pyJsonDumps(-2.5e-8), "-2.5e-08");
  for (const x of [0.1, 1e-5, 1e-7, 1.5e-10, 5e-324, -2.5e-8, 1e21]) {
    assert.equal(pyJsonLoads(pyJsonDumps(x)), x);
  }
});

Deno.test("a whole number past 2^53 is written as the float it is, as Python's repr", () => {
  // It went as digits: 2 ** 60 as 1152921504606847000, which Python reads as an int that is not
  // 2 ** 60 (a Python float 2.0 ** 60 echoed through a task came back as that wrong int).
  // CPython: json.dumps([2.0**60, 1e16, 2.0**53, -(2.0**53 + 2), 1e22, 123456789012345680.0])
  assert.equal(
    pyJsonDumps([2 ** 60, 1e16, 2 ** 53, -(2 ** 53 + 2), 1e22, 123456789012345680]),
    "[1.152921504606847e+18, 1e+16, 9007199254740992.0, -9007199254740994.0, 1e+22, " +
      "1.2345678901234568e+17]",
  );
  for (const x of [2 ** 60, 1e16, 2 ** 53, -(2 ** 53 + 2), 123456789012345680]) {
    assert.equal(pyJsonLoads(pyJsonDumps(x)), x);
  }
  // Safe integers stay ints.
  assert.equal(
    pyJsonDumps([2 ** 53 - 1, -(2 ** 53 - 1), 1]),
    "[9007199254740991, -9007199254740991, 1]",
  );
});

Deno.test("-0 is written as Python's -0.0 and read back as -0", () => {
  assert.equal(pyJsonDumps(-0), "-0.0");
  assert.equal(pyJsonDumps([0, -0]), "[0, -0.0]");
  assert.ok(Object.is(pyJsonLoads("-0.0"), -0));
  assert.ok(Object.is(pyJsonLoads("-0"), -0));
  assert.ok(Object.is((pyJsonLoads("[NaN, -0.0]") as number[])[1], -0));
});

Deno.test("long fractions stay numbers; a long integer beside them is still a bigint", () => {
  const text = '{"timestamp": 1733112345.1234567, "runtime": 0.0003449916839599609}';
  assert.deepEqual(pyJsonLoads(text), {
    timestamp: 1733112345.1234567,
    runtime: 0.0003449916839599609,
  });
  const mixed = pyJsonLoads("[0.0003449916839599609, 12345678901234567890, -9007199254740993]");
  assert.deepEqual(mixed, [0.0003449916839599609, 12345678901234567890n, -9007199254740993n]);
});

Deno.test("integers beyond 2^53 decode to bigint and encode back exactly", () => {
  const text = '{"n": [18446744073709551616, {"m": -9007199254740993}]}';
  const v = pyJsonLoads(text) as { n: [bigint, { m: bigint }] };
  assert.equal(v.n[0], 18446744073709551616n);
  assert.equal(v.n[1].m, -9007199254740993n);
  assert.equal(pyJsonDumps(v), text);
  // Safe integers stay numbers, even when long digit runs trigger the exact path.
  const mixed = pyJsonLoads("[9007199254740991, 9007199254740992, 12, 1.5, 1e+30]") as unknown[];
  assert.deepEqual(mixed, [9007199254740991, 9007199254740992n, 12, 1.5, 1e30]);
  assert.equal(typeof mixed[0], "number");
  // Big integers next to NaN go through the tolerant parser: still exact.
  assert.deepEqual(pyJsonLoads("[NaN, 340282366920938463463374607431768211456]"), [
    NaN,
    2n ** 128n,
  ]);
  assert.equal(
    pyJsonDumps([2n ** 64n, -(2n ** 63n) - 1n]),
    "[18446744073709551616, -9223372036854775809]",
  );
  // A 16+ digit run inside a string is not a number.
  assert.deepEqual(pyJsonLoads('["12345678901234567890"]'), ["12345678901234567890"]);
  // A big integer alone, or deep in a list of records, is found too.
  assert.equal(pyJsonLoads("18446744073709551616"), 18446744073709551616n);
  assert.deepEqual(pyJsonLoads('[{"a": 1}, {"b": [2, {"c": 9007199254740993}]}]'), [
    { a: 1 },
    { b: [2, { c: 9007199254740993n }] },
  ]);
  // So is a kombu 5.3+ wrapper deep in a batch; the same text inside a string is just text.
  assert.deepEqual(
    pyJsonLoads('[{"uuid": "t1"}, {"x": [{"__type__": "decimal", "__value__": "1.5"}]}]'),
    [{ uuid: "t1" }, { x: ["1.5"] }],
  );
  assert.deepEqual(pyJsonLoads('["{\\"__type__\\": 1}"]'), ['{"__type__": 1}']);
});

Deno.test("non-ASCII is escaped like ensure_ascii; astral characters as surrogate pairs", () => {
  assert.equal(pyJsonDumps("h\u00e9llo \u2603"), '"h\\u00e9llo \\u2603"');
  assert.equal(pyJsonDumps("\u{1F600}"), '"\\ud83d\\ude00"');
  assert.equal(pyJsonDumps({ "cl\u00e9": "\u4e2d" }), '{"cl\\u00e9": "\\u4e2d"}');
  // A lone surrogate is escaped, not replaced.
  assert.equal(pyJsonDumps("\ud800"), '"\\ud800"');
  assert.equal(pyJsonLoads('"h\\u00e9llo \\u2603"'), "h\u00e9llo \u2603");
  assert.equal(pyJsonLoads('"\\ud83d\\ude00"'), "\u{1F600}");
  // Output is pure ASCII.
  assert.match(pyJsonDumps(["\u00ff", "\u{10FFFF}", "\u0080"]), /^[\x20-\x7e]*$/);
});

Deno.test("control characters, DEL, quotes and backslashes are escaped as Python does", () => {
  // CPython: json.dumps('\x00\x01\x1f\x7f\b\f\n\r\t"\\/')
  assert.equal(
    pyJsonDumps('\x00\x01\x1f\x7f\b\f\n\r\t"\\/'),
    '"\\u0000\\u0001\\u001f\\u007f\\b\\f\\n\\r\\t\\"\\\\/"',
  );
  assert.equal(pyJsonLoads('"\\u0000\\u007f\\b\\"\\\\\\/"'), '\x00\x7f\b"\\/');
  // Raw control characters inside strings are invalid JSON (Python's strict mode too).
  assert.throws(() => pyJsonLoads('"a\u0001b"'), ProtocolError);
});

Deno.test("pyJsonDumps: undefined properties dropped; functions, symbols, undefined in arrays refused", () => {
  assert.equal(pyJsonDumps({ a: undefined, b: 1 }), '{"b": 1}');
  assert.throws(() => pyJsonDumps({ f: () => 1 }), EncodeError);
  assert.throws(() => pyJsonDumps({ s: Symbol("x") }), EncodeError);
  assert.throws(() => pyJsonDumps([undefined]), EncodeError);
  assert.equal(pyJsonDumps(undefined), "null");
});

Deno.test("pyJsonDumps honours toJSON and writes Date as kombu 5.2 does", () => {
  class Money {
    constructor(readonly cents: number) {}
    toJSON() {
      return { amount: this.cents / 100, currency: "EUR" };
    }
  }
  assert.equal(pyJsonDumps([new Money(150)]), '[{"amount": 1.5, "currency": "EUR"}]');
  assert.equal(
    pyJsonDumps({ at: new Date("2026-01-02T03:04:05.600Z") }),
    '{"at": "2026-01-02T03:04:05.600000Z"}',
  );
  assert.equal(pyJsonDumps(new Date("2026-01-02T03:04:05Z")), '"2026-01-02T03:04:05Z"');
  assert.throws(() => pyJsonDumps(new Date(NaN)), EncodeError);
});

Deno.test("pyJsonDumps refuses cycles but accepts shared references", () => {
  const a: Record<string, unknown> = { x: 1 };
  a.self = a;
  assert.throws(() => pyJsonDumps(a), EncodeError);
  const arr: unknown[] = [1];
  arr.push([arr]);
  assert.throws(() => pyJsonDumps(arr), /cycle/);
  const shared = { v: 1 };
  assert.equal(pyJsonDumps([shared, shared]), '[{"v": 1}, {"v": 1}]');
});

Deno.test("pyJsonDumps refuses Map, Set and raw bytes with EncodeError", () => {
  assert.throws(() => pyJsonDumps(new Map([["a", 1]])), EncodeError);
  assert.throws(() => pyJsonDumps({ s: new Set([1]) }), /Set/);
  assert.throws(() => pyJsonDumps([new Uint8Array([1, 2])]), EncodeError);
  assert.throws(() => pyJsonDumps(new ArrayBuffer(2)), EncodeError);
  assert.throws(() => pyJsonDumps(new DataView(new ArrayBuffer(2))), EncodeError);
});

Deno.test("pyJsonLoads: malformed JSON is a ProtocolError with the offset", () => {
  for (
    const bad of ["", "{", "[1,]", "{'a': 1}", "[1] x", "nan", "tru", '{"a" 1}', "[1 2]", "{1: 2}"]
  ) {
    assert.throws(() => pyJsonLoads(bad), ProtocolError, `accepted ${JSON.stringify(bad)}`);
  }
  assert.throws(() => pyJsonLoads("[1,]"), /offset \d+/);
});

Deno.test("pyJsonLoads accepts whitespace Python emits with indent and plain JSON", () => {
  assert.deepEqual(pyJsonLoads('{\n  "a": [\n    1,\n    NaN\n  ]\n}'), { a: [1, NaN] });
  assert.deepEqual(pyJsonLoads('{\n  "a": [\n    1,\n    2\n  ]\r\n}'), { a: [1, 2] });
  assert.deepEqual(pyJsonLoads(' [1, {"b": "c"}] '), [1, { b: "c" }]);
});

// ---------------------------------------------------------------------------
// kombu 5.3+ {"__type__", "__value__"} envelopes: json-encoding/kombu_json_variants.json

interface Variants {
  values_python_repr: Record<string, string>;
  encodings: Record<string, Record<string, string | { error: string }>>;
}

const VARIANTS = JSON.parse(
  Deno.readTextFileSync(new URL("json-encoding/kombu_json_variants.json", FIXTURES)),
) as Variants;

const KOMBU_52 = "kombu 5.2.4 (installed, Debian)";

/** What each value decodes to in JS, whichever kombu wrote it. */
function expectedJs(name: string, kombu: string): unknown {
  const is52 = kombu === KOMBU_52;
  switch (name) {
    case "aware_utc_datetime":
      return is52 ? "2026-01-02T03:04:05.600000Z" : new Date("2026-01-02T03:04:05.600Z");
    case "aware_plus2_datetime":
      return is52 ? "2026-01-02T03:04:05+02:00" : new Date("2026-01-02T01:04:05Z");
    case "naive_datetime":
      // Naive datetimes are read as UTC, as the Celery worker does.
      return is52 ? "2026-01-02T03:04:05" : new Date("2026-01-02T03:04:05Z");
    case "date":
      return is52 ? "2026-01-02T00:00:00" : "2026-01-02";
    case "time":
      return "03:04:05.000123";
    case "decimal":
      return "3.14";
    case "uuid4":
      return "12345678-1234-4678-9234-567812345678";
    case "bytes_utf8":
      return new TextEncoder().encode("raw bytes");
    case "bytes_binary":
      return new Uint8Array([0xff, 0x00, 0x01]);
    case "tuple":
      return [1, 2];
  }
  throw new Error(`fixture has a value this test does not know: ${name}`);
}

Deno.test("kombu JSON variants: the fixture has 5.2.4, 5.3.0, 5.3.1, 5.4.0 and HEAD encodings", () => {
  const kombus = Object.keys(VARIANTS.encodings);
  assert.equal(kombus.length, 5);
  assert.ok(kombus.includes(KOMBU_52));
  assert.ok(kombus.includes("kombu v5.3.0"));
  assert.ok(kombus.includes("kombu v5.3.1"));
  // The 5.3.0 and 5.3.1 uuid forms differ (version key dropped).
  assert.notEqual(
    VARIANTS.encodings["kombu v5.3.0"].uuid4,
    VARIANTS.encodings["kombu v5.3.1"].uuid4,
  );
});

for (const [kombu, values] of Object.entries(VARIANTS.encodings)) {
  Deno.test(`kombu JSON variants: every value written by ${kombu} decodes to the documented JS value`, () => {
    const names = Object.keys(VARIANTS.values_python_repr);
    assert.deepEqual(Object.keys(values).sort(), [...names].sort());
    for (const name of names) {
      const text = values[name];
      if (typeof text !== "string") {
        // kombu 5.2.4 cannot JSON-encode bytes at all.
        assert.equal(kombu, KOMBU_52);
        assert.match(text.error, /bytes is not JSON serializable/);
        continue;
      }
      const got = pyJsonLoads(text);
      assert.deepEqual(got, expectedJs(name, kombu), `${kombu} ${name}: ${text}`);
      // The same holds when the wrapper sits inside a task body.
      const nested = pyJsonLoads(`[[${text}], {"k": ${text}}, NaN]`) as [unknown[], { k: unknown }];
      assert.deepEqual(nested[0][0], expectedJs(name, kombu));
      assert.deepEqual(nested[1].k, expectedJs(name, kombu));
    }
  });
}

Deno.test("kombu 5.2.4 encodings are what pyJsonDumps writes for the same JS values", () => {
  const v = VARIANTS.encodings[KOMBU_52];
  assert.equal(pyJsonDumps(new Date("2026-01-02T03:04:05.600Z")), v.aware_utc_datetime);
  assert.equal(pyJsonDumps("2026-01-02T03:04:05"), v.naive_datetime);
  assert.equal(pyJsonDumps("3.14"), v.decimal);
  assert.equal(pyJsonDumps("12345678-1234-4678-9234-567812345678"), v.uuid4);
  assert.equal(pyJsonDumps([1, 2]), v.tuple);
  assert.throws(() => pyJsonDumps(new TextEncoder().encode("raw bytes")), EncodeError);
});

Deno.test("__type__ objects that are not kombu wrappers stay plain objects", () => {
  // Unknown __type__ (kombu 5.3+ would raise; we keep the object).
  assert.deepEqual(pyJsonLoads('{"__type__": "frozenset", "__value__": [1, 2]}'), {
    __type__: "frozenset",
    __value__: [1, 2],
  });
  // Extra keys: not a wrapper.
  assert.deepEqual(pyJsonLoads('{"__type__": "datetime", "__value__": "2026-01-02", "x": 1}'), {
    __type__: "datetime",
    __value__: "2026-01-02",
    x: 1,
  });
  // A known type with a value of the wrong shape is kept as is.
  assert.deepEqual(pyJsonLoads('{"__type__": "bytes", "__value__": 5}'), {
    __type__: "bytes",
    __value__: 5,
  });
  // Pre-release markers are not interpreted.
  assert.deepEqual(pyJsonLoads('{"datetime": "2026-01-02T03:04:05", "__datetime__": true}'), {
    datetime: "2026-01-02T03:04:05",
    __datetime__: true,
  });
});

Deno.test("json: pyJsonDumpsRecords writes what pyJsonDumps writes for a list of records", () => {
  class Point {
    x = 1;
  }
  const records: Record<string, unknown>[] = [
    {
      type: "task-succeeded",
      uuid: "t1",
      result: "'é' \u2603 \ud83d\ude00 \x7f\n\"",
      runtime: 1e-7,
    },
    { clock: 3, pid: 0, neg: -0, big: 2 ** 60, nan: NaN, inf: -Infinity, f: 1764646461.125 },
    { ok: true, no: false, none: null, skipped: undefined, "k\u00e9y": 1 },
    { nested: { a: [1, "b", null] }, when: new Date(0), n: 10n ** 20n },
    new Point() as unknown as Record<string, unknown>,
    { toJSON: () => "custom" },
    {},
  ];
  assert.equal(pyJsonDumpsRecords(records), pyJsonDumps(records));
  assert.equal(pyJsonDumpsRecords([]), "[]");
  assert.throws(() => pyJsonDumpsRecords([{ f: () => 1 }]), EncodeError);
});
