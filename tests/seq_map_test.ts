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
      const seen: [number, number][] = [];
      m.forEach((v, k) => seen.push([k, v]));
      assert.deepEqual(
        seen.sort((a, b) => a[0] - b[0]),
        m.entries(),
        "forEach visits each entry once",
      );
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

Deno.test("SeqMap: deletions agree with a Map while no entry is displaced, and after collisions move some", () => {
  const m = new SeqMap<number>(64);
  const ref = new Map<number, number>();
  const add = (k: number) => {
    m.set(k, k);
    ref.set(k, k);
  };
  const check = () => {
    assert.equal(m.size, ref.size);
    for (const [k, v] of ref) assert.equal(m.get(k), v);
    assert.deepEqual(m.entries(), [...ref].sort((a, b) => a[0] - b[0]));
  };
  // Rising keys, each in its own slot: deleted out of order, then the oldest first.
  for (let k = 0; k < 30; k++) add(k);
  for (const k of [7, 3, 29, 0, 15]) assert.equal(m.delete(k), ref.delete(k));
  check();
  // Keys one table length apart collide: they are moved along, and deleting makes them move back.
  for (const k of [64 + 1, 128 + 1, 64 + 2, 64 + 29, 64 + 30]) add(k);
  check();
  for (const k of [1, 2, 64 + 1, 28, 29, 30, 128 + 1, 64 + 2, 64 + 29]) {
    assert.equal(m.delete(k), ref.delete(k));
    check();
  }
  // Back to no displaced entry: rising keys again.
  for (let k = 200; k < 220; k++) add(k);
  for (const k of [...ref.keys()]) {
    assert.ok(m.delete(k));
    ref.delete(k);
    check();
  }
});
