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
  const fields = jsonFields(text)!;
  assert.deepEqual([...fields.keys()], Object.keys(values));
  for (const [k, v] of Object.entries(values)) assert.equal(fields.get(k), pyJsonDumps(v), k);
});

Deno.test("jsonFields: standard JSON spacing, empty objects", () => {
  assert.deepEqual(
    [...jsonFields(' {"a":1,"b" : [2,3] ,"c":"x"} ')!],
    [["a", "1"], ["b", "[2,3]"], ["c", '"x"']],
  );
  assert.equal(jsonFields("{}")!.size, 0);
  assert.equal(jsonFields(" { } ")!.size, 0);
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
    assert.equal(jsonFields(text), null, text);
  }
});
