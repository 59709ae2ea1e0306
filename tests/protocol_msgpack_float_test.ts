/**
 * A Python float sent with msgpack stays a float: `1.0` from the command line
 * (a {@link PyFloat}) is written as Python's msgpack writes it, not as the integer 1.
 */

import assert from "node:assert/strict";
import { PyFloat } from "../src/protocol/json.ts";
import { msgpackDecode, msgpackEncode } from "../src/protocol/msgpack.ts";

/** Bytes as hex. */
const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

Deno.test("msgpack: a PyFloat is written as a float 64, as Python's msgpack writes 1.0", () => {
  // /usr/bin/python3 -c 'import msgpack; print(msgpack.packb([1.0, 1, 2.5], use_bin_type=True).hex())'
  // (msgpack 1.0.3, what kombu's msgpack serializer calls).
  const python = "93cb3ff000000000000001cb4004000000000000";
  // Before: 930101cb4004000000000000, so a Python task got int 1.
  assert.equal(hex(msgpackEncode([new PyFloat(1), 1, 2.5])), python);
  assert.equal(hex(msgpackEncode({ x: [new PyFloat(-0)] })), "81a178" + "91cb8000000000000000");
  assert.deepEqual(msgpackDecode(msgpackEncode([{ a: new PyFloat(100) }, 3])), [{ a: 100 }, 3]);
});
