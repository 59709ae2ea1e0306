/** OldestKeys: evicting a Map's oldest entries through one kept iterator. */

import assert from "node:assert/strict";
import { OldestKeys } from "../src/client/oldest_keys.ts";

Deno.test("OldestKeys: evicts in insertion order, re-inserted keys last, deleted ones skipped", () => {
  const map = new Map<string, number>();
  const oldest = new OldestKeys(map);
  assert.equal(oldest.evict(), undefined);
  for (const k of ["a", "b", "c", "d"]) map.set(k, 0);
  assert.equal(oldest.evict(), "a");
  map.delete("b"); // removed by someone else
  map.delete("c");
  map.set("c", 1); // re-inserted: now the newest
  map.set("e", 0);
  assert.deepEqual([oldest.evict(), oldest.evict(), oldest.evict()], ["d", "c", "e"]);
  assert.equal(map.size, 0);
  assert.equal(oldest.evict(), undefined);
  map.set("f", 0); // after the iterator ran out
  assert.equal(oldest.evict(), "f");
  map.set("g", 0).set("h", 0);
  map.clear();
  map.set("i", 0);
  assert.equal(oldest.evict(), "i");
});

Deno.test("OldestKeys: a bounded LRU keeps exactly the most recently touched keys", () => {
  const map = new Map<number, number>();
  const oldest = new OldestKeys(map);
  const max = 100;
  const touched: number[] = [];
  let seed = 7;
  for (let i = 0; i < 20_000; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const k = seed % 300;
    map.delete(k);
    map.set(k, i);
    touched.push(k);
    while (map.size > max) oldest.evict();
  }
  const expected: number[] = [];
  for (let i = touched.length - 1; i >= 0 && expected.length < max; i--) {
    if (!expected.includes(touched[i])) expected.push(touched[i]);
  }
  assert.deepEqual([...map.keys()], expected.reverse());
});

Deno.test("OldestKeys.evictEntry: the oldest key with its value, through the same kept iterator", () => {
  const map = new Map<string, { n: number }>();
  const oldest = new OldestKeys(map);
  assert.equal(oldest.evictEntry(), undefined);
  const a = { n: 1 };
  map.set("a", a).set("b", { n: 2 }).set("c", { n: 3 });
  const [key, value] = oldest.evictEntry()!;
  assert.equal(key, "a");
  assert.equal(value, a); // the object held, not a copy
  map.delete("b");
  map.set("b", { n: 4 }); // re-inserted: now the newest
  assert.equal(oldest.evict(), "c"); // evict and evictEntry share the order
  assert.deepEqual(oldest.evictEntry(), ["b", { n: 4 }]);
  assert.equal(map.size, 0);
  const set = new Set(["x", "y"]);
  assert.deepEqual(new OldestKeys(set).evictEntry(), ["x", "x"]);
  assert.deepEqual([...set], ["y"]);
});
