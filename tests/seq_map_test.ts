import assert from "node:assert/strict";
import { SeqMap } from "../src/worker/seq_map.ts";

Deno.test("SeqMap: random sets and deletes agree with a Map, through growth and wrapped runs", () => {
  const m = new SeqMap<number>(16);
  const ref = new Map<number, number>();
  let seed = 42;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  let next = 0;
  for (let step = 0; step < 50_000; step++) {
    const op = rand(10);
    if (op < 5) {
      // Mostly rising keys, as dispatch numbers; some far apart, colliding in the table.
      const k = rand(4) === 0 ? rand(1 << 20) * 64 : next++;
      m.set(k, step);
      ref.set(k, step);
    } else {
      const keys = [...ref.keys()];
      const k = keys.length && rand(5) ? keys[rand(keys.length)] : rand(1 << 20);
      assert.equal(m.delete(k), ref.delete(k));
    }
    if (step % 997 === 0) {
      assert.equal(m.size, ref.size);
      for (const [k, v] of ref) assert.equal(m.get(k), v);
      assert.deepEqual(m.entries(), [...ref].sort((a, b) => a[0] - b[0]));
    }
  }
  for (const k of [...ref.keys()]) assert.ok(m.delete(k));
  assert.equal(m.size, 0);
  assert.equal(m.get(0), undefined);
});

Deno.test("SeqMap: keys past 2^32, replacement, has, clear, iteration oldest first", () => {
  const m = new SeqMap<string>();
  const big = 2 ** 40 + 3;
  m.set(big, "a").set(3, "b").set(big, "c");
  assert.equal(m.size, 2);
  assert.equal(m.get(big), "c");
  assert.ok(m.has(3));
  assert.deepEqual([...m], [[3, "b"], [big, "c"]]);
  assert.deepEqual(m.keys(), [3, big]);
  assert.deepEqual(m.values(), ["b", "c"]);
  m.clear();
  assert.equal(m.size, 0);
  assert.equal(m.has(3), false);
  assert.throws(() => m.set(-1, "x"), RangeError);
  assert.throws(() => m.set(1.5, "x"), RangeError);
});

Deno.test("SeqMap: a key no dispatch number can be is never found (-1 marks a free slot)", () => {
  const m = new SeqMap<string>();
  m.set(5, "a");
  for (const k of [-1, -5, NaN, 1.5]) {
    assert.equal(m.has(k), false);
    assert.equal(m.get(k), undefined);
    assert.equal(m.delete(k), false);
  }
  assert.equal(m.size, 1);
  assert.deepEqual([...m], [[5, "a"]]);
});
