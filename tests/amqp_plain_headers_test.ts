/**
 * AMQP message headers are decoded straight to plain values
 * (src/broker/amqp_field_table.ts): the same values, for every field type
 * Celery/py-amqp and RabbitMQ send, as the path they replace — amqplib's
 * typed form then `fromAmqpTable` (kept in tests/helpers/amqp_table_before.ts)
 * — gave: over the header tables of every content-header frame captured
 * from Python Celery, over tables py-amqp 5.1.1 wrote
 * (fixtures/celery-5.2/amqp/field_tables.json, written by py-amqp's
 * `serialization._write_table`, with py-amqp's own reading of each), over
 * synthetic tables of every tag, and over random and cut ones (the same
 * value, or the same error). The one deliberate difference: a nested table
 * whose keys include `"!"` and `"value"` stays a table (the old path took it
 * for amqplib's typed form).
 */

import assert from "node:assert/strict";
import { decodeFieldTable, FieldTableError } from "../src/broker/amqp_field_table.ts";
import { decodeBefore } from "./helpers/amqp_table_before.ts";

const FIXTURES = new URL("./fixtures/celery-5.2/amqp/", import.meta.url);

const fromHex = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/**
 * A value as a tree `deepStrictEqual` compares exactly: -0, NaN and invalid
 * dates spelled out, key order and own `__proto__` keys kept, a byte
 * array's buffer size (a view of a larger buffer shows).
 */
function canon(v: unknown): unknown {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") return ["number", Object.is(v, -0) ? "-0" : String(v)];
  if (typeof v === "bigint") return ["bigint", String(v)];
  if (Array.isArray(v)) return ["array", v.map(canon)];
  if (v instanceof Date) return ["date", String(v.getTime())];
  if (v instanceof Uint8Array) {
    return ["bytes", v.constructor.name, toHex(v), v.byteOffset, v.buffer.byteLength];
  }
  if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    return ["table", Object.keys(v).map((k) => [k, canon((v as Record<string, unknown>)[k])])];
  }
  return ["other", String(v)];
}

/** What decoding gives: the value, or the error's message. */
function outcome(decode: (b: Uint8Array) => unknown, bytes: Uint8Array): unknown {
  try {
    return canon(decode(bytes));
  } catch (err) {
    return ["error", (err as Error).message];
  }
}

function assertSame(bytes: Uint8Array, what: string): unknown {
  const now = outcome(decodeFieldTable, bytes);
  assert.deepStrictEqual(now, outcome(decodeBefore, bytes), `${what}: ${toHex(bytes)}`);
  return now;
}

/** The headers table of a content-header frame's payload (fixtures' `content_header_frame_hex`). */
function headersOf(payload: Uint8Array): Uint8Array {
  const flags = (payload[12] << 8) | payload[13];
  assert.ok(flags & 0x2000, "the frame has headers");
  let at = 14;
  if (flags & 0x8000) at += 1 + payload[at];
  if (flags & 0x4000) at += 1 + payload[at];
  const len = new DataView(payload.buffer, payload.byteOffset).getUint32(at);
  return payload.subarray(at + 4, at + 4 + len);
}

/** Every `{content_header_frame_hex, headers}` in a fixture. */
function capturedFrames(value: unknown, out: { hex: string; headers: unknown }[] = []) {
  if (Array.isArray(value)) { for (const v of value) capturedFrames(v, out); }
  else if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (typeof o.content_header_frame_hex === "string") {
      out.push({ hex: o.content_header_frame_hex, headers: o.headers });
    }
    for (const v of Object.values(o)) capturedFrames(v, out);
  }
  return out;
}

Deno.test("plain headers: every table Python Celery sent in the captured fixtures decodes as before", () => {
  let frames = 0;
  for (const dir of ["publish", "worker"]) {
    for (const f of Deno.readDirSync(new URL(`${dir}/`, FIXTURES))) {
      const fixture = JSON.parse(Deno.readTextFileSync(new URL(`${dir}/${f.name}`, FIXTURES)));
      for (const { hex, headers } of capturedFrames(fixture)) {
        const table = headersOf(fromHex(hex));
        assertSame(table, `${dir}/${f.name}`);
        if (headers !== undefined) assert.deepStrictEqual(decodeFieldTable(table), headers);
        frames++;
      }
    }
  }
  assert.ok(frames >= 20, `${frames} frames`);
});

/** The fixture's spelling of what py-amqp read, as the values Celeriac gives. */
function fromPython(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromPython);
  if (v === null || typeof v !== "object") return v;
  const o = v as Record<string, unknown>;
  if ("$int" in o) return BigInt(o.$int as string);
  if ("$float" in o) {
    const floats: Record<string, number> = { nan: NaN, inf: Infinity, "-inf": -Infinity };
    return floats[o.$float as string] ?? Number(o.$float);
  }
  if ("$decimal" in o) return Number(o.$decimal);
  if ("$date" in o) return new Date((o.$date as number) * 1000);
  // py-amqp reads an `S` that is not UTF-8 as bytes; Celeriac (and amqplib) as text.
  if ("$bytes" in o) return new TextDecoder().decode(fromHex(o.$bytes as string));
  const table = o.$table as Record<string, unknown>;
  return Object.fromEntries(Object.entries(table).map(([k, x]) => [k, fromPython(x)]));
}

Deno.test("plain headers: tables py-amqp writes (every type it sends) decode as before and as py-amqp reads them", () => {
  const fixture = JSON.parse(Deno.readTextFileSync(new URL("field_tables.json", FIXTURES)));
  const names = [];
  for (const t of fixture.tables as { name: string; hex: string; py_amqp_reads: unknown }[]) {
    const bytes = fromHex(t.hex);
    const python = canon(fromPython(t.py_amqp_reads));
    if (t.name === "typed_look") {
      // The deliberate difference: py-amqp's reading now, not the old path's Date.
      assert.deepStrictEqual(outcome(decodeFieldTable, bytes), python);
      assert.deepStrictEqual(decodeBefore(bytes), { h: new Date(10_000) });
    } else assert.deepStrictEqual(assertSame(bytes, t.name), python, t.name);
    names.push(t.name);
  }
  assert.deepEqual(names, [
    "celery_headers",
    "strings",
    "ints",
    "bools_void",
    "floats",
    "decimals",
    "timestamps",
    "nested",
    "typed_look",
    "dead_letter",
  ]);
});

/** A value with its type tag, for the synthetic tables. */
type Field =
  | { tag: "t"; v: boolean }
  | { tag: "b" | "B" | "U" | "s" | "u" | "I" | "i" | "f" | "d"; v: number }
  | { tag: "L" | "l" | "T"; v: bigint }
  | { tag: "D"; places: number; digits: number }
  | { tag: "S"; v: string }
  | { tag: "x"; v: Uint8Array }
  | { tag: "F"; entries: [string, Field][] }
  | { tag: "A"; items: Field[] }
  | { tag: "V" };

const utf8 = (s: string) => new TextEncoder().encode(s);

function encodeValue(f: Field): number[] {
  const view = (n: number, set: (d: DataView) => void) => {
    const d = new DataView(new ArrayBuffer(n));
    set(d);
    return [...new Uint8Array(d.buffer)];
  };
  const sized = (bytes: number[] | Uint8Array) => [
    ...view(4, (d) => d.setUint32(0, bytes.length)),
    ...bytes,
  ];
  const tag = f.tag.charCodeAt(0);
  switch (f.tag) {
    case "t":
      return [tag, f.v ? 1 : 0];
    case "b":
      return [tag, ...view(1, (d) => d.setInt8(0, f.v))];
    case "B":
      return [tag, ...view(1, (d) => d.setUint8(0, f.v))];
    case "U":
    case "s":
      return [tag, ...view(2, (d) => d.setInt16(0, f.v))];
    case "u":
      return [tag, ...view(2, (d) => d.setUint16(0, f.v))];
    case "I":
      return [tag, ...view(4, (d) => d.setInt32(0, f.v))];
    case "i":
      return [tag, ...view(4, (d) => d.setUint32(0, f.v))];
    case "f":
      return [tag, ...view(4, (d) => d.setFloat32(0, f.v))];
    case "d":
      return [tag, ...view(8, (d) => d.setFloat64(0, f.v))];
    case "L":
    case "l":
      return [tag, ...view(8, (d) => d.setBigInt64(0, f.v))];
    case "T":
      return [tag, ...view(8, (d) => d.setBigUint64(0, f.v))];
    case "D":
      return [tag, f.places, ...view(4, (d) => d.setInt32(0, f.digits))];
    case "S":
      return [tag, ...sized(utf8(f.v))];
    case "x":
      return [tag, ...sized(f.v)];
    case "F":
      return [tag, ...sized(encodeEntries(f.entries))];
    case "A":
      return [tag, ...sized(f.items.flatMap(encodeValue))];
    case "V":
      return [tag];
  }
}

function encodeEntries(entries: [string, Field][]): number[] {
  return entries.flatMap(([k, f]) => [utf8(k).length, ...utf8(k), ...encodeValue(f)]);
}

/** One value of each width's edges, for every tag. */
const EDGES: Field[] = [
  { tag: "t", v: true },
  { tag: "t", v: false },
  ...[-128, -1, 0, 127].map((v) => ({ tag: "b" as const, v })),
  ...[0, 128, 255].map((v) => ({ tag: "B" as const, v })),
  ...[-32768, -2, 0, 32767].flatMap((v) => [{ tag: "U" as const, v }, { tag: "s" as const, v }]),
  ...[0, 32768, 65535].map((v) => ({ tag: "u" as const, v })),
  ...[-(2 ** 31), -1, 0, 2 ** 31 - 1].map((v) => ({ tag: "I" as const, v })),
  ...[0, 2 ** 31, 2 ** 32 - 1].map((v) => ({ tag: "i" as const, v })),
  ...[
    -(2n ** 63n),
    -(2n ** 53n) - 1n,
    -(2n ** 53n),
    -1n,
    0n,
    2n ** 53n,
    2n ** 53n + 1n,
    2n ** 63n - 1n,
  ]
    .flatMap((v) => [{ tag: "L" as const, v }, { tag: "l" as const, v }]),
  ...[0, -0, 1.5, NaN, Infinity, -Infinity, 3.4e38, 1e-45].map((v) => ({ tag: "f" as const, v })),
  ...[0, -0, 1 / 3, NaN, -Infinity, Number.MAX_VALUE, 5e-324].map((v) => ({
    tag: "d" as const,
    v,
  })),
  ...[[0, 0], [2, 150], [2, -125], [3, -1], [9, 2 ** 31 - 1], [0, -(2 ** 31)], [255, 7]].map((
    [places, digits],
  ) => ({ tag: "D" as const, places, digits })),
  ...["", "celery", "h\u00e9llo \u2603 \u{1F600}", "z".repeat(70_000), "\u0000"].map((v) => ({
    tag: "S" as const,
    v,
  })),
  ...[[], [0], [0xff, 0xfe, 0], Array.from({ length: 300 }, (_, i) => i & 0xff)].map((v) => ({
    tag: "x" as const,
    v: Uint8Array.from(v),
  })),
  ...[0n, 1_733_486_400n, 8_640_000_000_000n, 8_640_000_000_001n, 2n ** 64n - 1n].map((v) => ({
    tag: "T" as const,
    v,
  })),
  { tag: "V" },
  { tag: "F", entries: [] },
  { tag: "A", items: [] },
];

Deno.test("plain headers: every tag at its edges, alone, in arrays and in nested tables, decodes as before", () => {
  const entries = EDGES.map((f, i): [string, Field] => [`k${i}`, f]);
  assertSame(new Uint8Array(encodeEntries(entries)), "flat");
  assertSame(new Uint8Array(encodeEntries([["a", { tag: "A", items: EDGES }]])), "array");
  const nested: Field = { tag: "F", entries: [["in", { tag: "F", entries }]] };
  assertSame(
    new Uint8Array(encodeEntries([["n", { tag: "A", items: [nested, nested] }]])),
    "nested",
  );
  for (const [i, f] of EDGES.entries()) {
    assertSame(new Uint8Array(encodeEntries([["v", f]])), `#${i}`);
  }
  const keys: [string, Field][] = [
    ["", { tag: "V" }],
    ["__proto__", { tag: "F", entries: [["x", { tag: "I", v: 1 }]] }],
    ["2", { tag: "I", v: 2 }],
    ["1", { tag: "I", v: 1 }],
    ["dup", { tag: "I", v: 1 }],
    ["dup", { tag: "S", v: "again" }],
    ["\u00e9t\u00e9", { tag: "t", v: true }],
    ["k".repeat(255), { tag: "V" }],
  ];
  assertSame(new Uint8Array(encodeEntries(keys)), "keys");
  assertSame(new Uint8Array(encodeEntries([["n", { tag: "F", entries: keys }]])), "nested keys");
});

/** A seeded generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomField(next: () => number, depth: number): Field {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)];
  const roll = Math.floor(next() * (depth > 3 ? 17 : 19));
  if (roll === 17) {
    const n = Math.floor(next() * 5);
    const keys = ["a", "b", "id", "value", "time", "__proto__", "0", "\u00e9"];
    return {
      tag: "F",
      entries: Array.from({ length: n }, () => [pick(keys), randomField(next, depth + 1)]),
    };
  }
  if (roll === 18) {
    const n = Math.floor(next() * 5);
    return { tag: "A", items: Array.from({ length: n }, () => randomField(next, depth + 1)) };
  }
  return pick(
    EDGES.filter((f) => f.tag !== "F" && f.tag !== "A" && !(f.tag === "S" && f.v.length > 1000)),
  );
}

Deno.test("plain headers: random tables, and random tables cut or with a byte changed, decode (or fail) as before", () => {
  const next = random(13);
  for (let i = 0; i < 3000; i++) {
    const entries = Array.from(
      { length: 1 + Math.floor(next() * 6) },
      (_, j): [string, Field] => [`k${j}`, randomField(next, 0)],
    );
    const bytes = new Uint8Array(encodeEntries(entries));
    assertSame(bytes, `random #${i}`);
    assertSame(bytes.subarray(0, Math.floor(next() * bytes.length)), `cut #${i}`);
    const changed = bytes.slice();
    changed[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
    assertSame(changed, `changed #${i}`);
  }
});

Deno.test("plain headers: an unknown tag or a cut value is a FieldTableError naming it", () => {
  assert.throws(
    () => decodeFieldTable(new Uint8Array([1, 107, 63])),
    (err) =>
      err instanceof FieldTableError && /unknown type tag "\?" \(byte 63\)/.test(err.message),
  );
  assert.throws(
    () => decodeFieldTable(new Uint8Array([1, 107, 76, 0, 0])),
    (err) => err instanceof FieldTableError && /ends inside a value/.test(err.message),
  );
});

Deno.test('plain headers: a nested table with "!" and "value" keys stays a table (the old path read it as a typed value)', () => {
  const entries: [string, Field][] = [["h", {
    tag: "F",
    entries: [["!", { tag: "S", v: "timestamp" }], ["value", { tag: "I", v: 10 }]],
  }]];
  const bytes = new Uint8Array(encodeEntries(entries));
  assert.deepStrictEqual(decodeFieldTable(bytes), { h: { "!": "timestamp", value: 10 } });
  assert.deepStrictEqual(decodeBefore(bytes), { h: new Date(10_000) });
});
