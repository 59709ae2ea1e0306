import assert from "node:assert/strict";
import { chunked, VALUES_PER_COMMAND } from "../src/broker/chunks.ts";

Deno.test("chunks: a list is cut into consecutive slices of at most the size, in order", () => {
  assert.deepEqual(chunked([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(chunked([1, 2, 3, 4], 2), [[1, 2], [3, 4]]);
  assert.deepEqual(chunked([], 2), []);
  const big = Array.from({ length: 2 * VALUES_PER_COMMAND + 1 }, (_, i) => i);
  const slices = chunked(big);
  assert.deepEqual(slices.map((s) => s.length), [VALUES_PER_COMMAND, VALUES_PER_COMMAND, 1]);
  assert.deepEqual(slices.flat(), big);
  assert.throws(() => chunked([1], 0), RangeError);
});
