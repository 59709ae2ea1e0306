/** argsrepr / kwargsrepr stop at their size limit instead of building the whole repr. */

import assert from "node:assert/strict";
import { argsRepr, kwargsRepr, pyRepr, REPR_MAXSIZE, resultRepr } from "../protocol.ts";

/** Objects whose field counts how often a repr read it. */
function counted(n: number): { items: Record<string, number>[]; reads: () => number } {
  let reads = 0;
  const items = Array.from({ length: n }, (_, i) => {
    const o = {} as Record<string, number>;
    Object.defineProperty(o, "v", {
      enumerable: true,
      get() {
        reads++;
        return i;
      },
    });
    return o;
  });
  return { items, reads: () => reads };
}

Deno.test("repr: a large argument list is read only as far as the limit", () => {
  const { items, reads } = counted(100_000);
  const repr = argsRepr([items]);
  assert.equal(repr.length, REPR_MAXSIZE);
  assert.ok(repr.startsWith("([{'v': 0}, {'v': 1}, "));
  assert.ok(repr.endsWith("..."));
  assert.ok(reads() < 200, `read ${reads()} of 100000 items for a 1024-character repr`);
  const kw = counted(100_000);
  assert.equal(kwargsRepr({ items: kw.items }).length, REPR_MAXSIZE);
  assert.ok(kw.reads() < 200, `read ${kw.reads()} items`);
});

Deno.test("repr: cut reprs are the first characters of the whole repr", () => {
  const values: unknown[] = [
    "x".repeat(100_000),
    'it\'s "quoted"\n\t\\ '.repeat(200),
    [1, "a", null, true, NaN, -Infinity, 2n ** 70n, { k: [new Date(0)] }],
    Array.from({ length: 500 }, (_, i) => ({ ["key'" + i]: "v".repeat(i) })),
  ];
  for (const v of values) {
    const whole = `(${pyRepr(v)},)`;
    const kwWhole = pyRepr({ v });
    for (const max of [10, 100, REPR_MAXSIZE, 4096]) {
      const expected = whole.length > max ? whole.slice(0, max - 3) + "..." : whole;
      assert.equal(argsRepr([v], max), expected);
      assert.equal(
        kwargsRepr({ v }, max),
        kwWhole.length > max ? kwWhole.slice(0, max - 3) + "..." : kwWhole,
      );
    }
  }
  assert.equal(argsRepr([]), "()");
  assert.equal(argsRepr([1, 2]), "(1, 2)");
  assert.equal(kwargsRepr({}), "{}");
});

Deno.test("repr: resultRepr is pyRepr cut to 1024 characters, reading a large result only that far", () => {
  for (
    const v of [1, -2.5, 1e21, NaN, -Infinity, true, false, null, undefined, "it's", [1, "a"], {}]
  ) {
    assert.equal(resultRepr(v), pyRepr(v), String(v));
  }
  assert.equal(resultRepr(12345, 3), "...");
  const { items, reads } = counted(100_000);
  const expected = pyRepr(items).slice(0, REPR_MAXSIZE - 3) + "...";
  const before = reads();
  assert.equal(resultRepr(items), expected);
  assert.ok(
    reads() - before < 200,
    `read ${reads() - before} of 100000 items for a 1024-character repr`,
  );
});
