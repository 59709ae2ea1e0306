// A stored result nested 130 deep that holds a long integer: Celery (json.loads) reads it, and so
// do we (the depth limit is for task bodies); only a result too deep for the stack is refused.
import assert from "node:assert/strict";
import { decodeResultMeta } from "../src/protocol/result_meta.ts";
import { readRpcResult, rpcResultMessage } from "../src/backend/rpc_message.ts";

const nested = (leaf: string, depth: number) => "[".repeat(depth) + leaf + "]".repeat(depth);
const meta = (result: string) =>
  `{"status": "SUCCESS", "result": ${result}, "traceback": null, "children": [], "task_id": "t-deep"}`;

Deno.test("deep result without a long integer is read", () => {
  decodeResultMeta(meta(nested("5", 130)), "t-deep");
});
Deno.test("deep result with a long integer is read too (Celery reads it)", () => {
  const m = decodeResultMeta(meta(nested("18446744073709551616", 130)), "t-deep");
  let v: unknown = m.result;
  for (let i = 0; i < 130; i++) v = (v as unknown[])[0];
  assert.equal(v, 18446744073709551616n);
});
Deno.test("deep rpc result with a long integer is a result (else the waiter never settles)", () => {
  const m = rpcResultMessage("t-deep", meta(nested("18446744073709551616", 130)), {
    persistent: false,
  });
  assert.notEqual(readRpcResult(m), null);
});
Deno.test("a result too deep for the stack is refused as too deep, not as another serializer", () => {
  assert.throws(
    () => decodeResultMeta(meta(nested("18446744073709551616", 100_000)), "t-deep"),
    /The result of task t-deep is JSON too deeply nested to read \(Message JSON value nests too deep/,
  );
});
