import assert from "node:assert/strict";
import { jsonFields } from "../src/protocol/json_fields.ts";
import { pyJsonDumps } from "../src/protocol/json.ts";

Deno.test("jsonFields: raw text of each top-level value, whatever it nests", () => {
  const values: Record<string, unknown> = {
    s: 'a "quoted", {braced} [bracketed] \\ string\\',
    n: -1.5e-7,
    t: true,
    z: null,
    a: [1, ["]", { "}": '\\"' }], []],
    o: { k: { k: "v" }, e: {} },
    u: "ünïcode ✓",
    empty: "",
  };
  const text = pyJsonDumps(values);
  const keys = [...Object.keys(values), "absent"];
  assert.deepEqual(jsonFields(text, keys), [...Object.values(values).map(pyJsonDumps), undefined]);
  assert.deepEqual(jsonFields(text, ["n"]), ["-1.5e-07"]);
});

Deno.test("jsonFields: standard JSON spacing, empty objects", () => {
  assert.deepEqual(jsonFields(' {"a":1,"b" : [2,3] ,"c":"x"} ', ["c", "b", "a"]), [
    '"x"',
    "[2,3]",
    "1",
  ]);
  assert.deepEqual(jsonFields("{}", ["a"]), [undefined]);
  assert.deepEqual(jsonFields(" { } ", ["a"]), [undefined]);
  // A repeated key: the last value, as a decoder keeps.
  assert.deepEqual(jsonFields('{"a": 1, "ab": 3, "a": 2}', ["a"]), ["2"]);
});

Deno.test("jsonFields: null for what is not a whole object with plain keys", () => {
  for (
    const text of [
      "[1, 2]",
      '"s"',
      "",
      '{"a": 1',
      '{"a": "unterminated}',
      '{"a": [1, 2}',
      '{"a" 1}',
      '{"a": 1} extra',
      '{"a": 1,}',
      '{"a\\"b": 1}',
      '{"a": }',
    ]
  ) {
    assert.equal(jsonFields(text, ["a"]), null, text);
  }
});
