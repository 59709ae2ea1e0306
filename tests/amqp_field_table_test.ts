/**
 * Field tables (message headers) decode their strings exactly whichever
 * way they are read (short ASCII ones byte by byte, the others as UTF-8),
 * and a nested table or array reads nothing past its own length.
 */

import assert from "node:assert/strict";
import { decodeFieldTable, FieldTableError } from "../src/broker/amqp_field_table.ts";

const UTF8 = new TextEncoder();

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** One entry: a short-string key and a long string (`S`) value. */
function text(key: string, value: string): number[] {
  const k = UTF8.encode(key);
  const v = UTF8.encode(value);
  return [k.length, ...k, "S".charCodeAt(0), ...u32(v.length), ...v];
}

Deno.test("field table: ASCII and non-ASCII strings, short and long, decode exactly", () => {
  const values: Record<string, string> = {
    id: "0f6c5b86-4d7e-4f55-a0a4-6a1d3b1f8e21",
    empty: "",
    "clé": "café",
    "名前": "日本語のタスク",
    emoji: "task 🎉",
    at64: "a".repeat(64),
    at65: "b".repeat(65),
    long: "c".repeat(300),
    longUtf8: "é".repeat(100),
    lastByte: "x".repeat(63) + "é",
  };
  const bytes = new Uint8Array(Object.entries(values).flatMap(([k, v]) => text(k, v)));
  assert.deepEqual(decodeFieldTable(bytes), values);
});

Deno.test("field table: a nested array or table reads nothing past its own length", () => {
  // An array declared 7 bytes long, whose string claims 10: the bytes after the array (the
  // next entry) must not be read as the rest of the string.
  const inner = ["S".charCodeAt(0), ...u32(10), ..."ab".split("").map((c) => c.charCodeAt(0))];
  const next = text("k", "12345678");
  for (const tag of ["A", "F"]) {
    const body = tag === "A" ? inner : [1, "x".charCodeAt(0), ...inner];
    const bytes = new Uint8Array([
      1,
      "a".charCodeAt(0),
      tag.charCodeAt(0),
      ...u32(body.length),
      ...body,
      ...next,
    ]);
    assert.throws(() => decodeFieldTable(bytes), FieldTableError, tag);
  }
  const fine = new Uint8Array([
    1,
    "a".charCodeAt(0),
    "A".charCodeAt(0),
    ...u32(7),
    "S".charCodeAt(0),
    ...u32(2),
    ..."ab".split("").map((c) => c.charCodeAt(0)),
    ...text("k", "v"),
  ]);
  assert.deepEqual(decodeFieldTable(fine), { a: ["ab"], k: "v" });
});
