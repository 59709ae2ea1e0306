/**
 * JSON that starts with a byte-order mark (U+FEFF) is refused, as Python's
 * json.loads (kombu, Celery) refuses it, with a reason naming the BOM.
 */

import assert from "node:assert/strict";
import { ProtocolError } from "../protocol.ts";
import { decodeResultMeta } from "../src/protocol/result_meta.ts";

Deno.test("a stored result starting with a BOM is refused naming the BOM, not result_serializer", () => {
  assert.throws(
    () => decodeResultMeta('\ufeff{"status": "SUCCESS", "result": 5, "task_id": "t-1"}', "t-1"),
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError);
      assert.match(err.message, /byte-order mark/);
      assert.doesNotMatch(err.message, /result_serializer/);
      assert.equal(err.taskId, "t-1");
      return true;
    },
  );
});
