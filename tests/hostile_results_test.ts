/**
 * Hostile result metas in the backend (written by another tool, or by hand):
 * a client's get() ends with an error that names the task and keeps what was
 * stored, instead of "Task  failed: Exception: ".
 */

import assert from "node:assert/strict";
import { decodeResultMeta, ProtocolError, taskErrorFromMeta } from "../protocol.ts";

Deno.test("results: a FAILURE meta without task_id, or with a result that is no exception dict, names its task and keeps the result", () => {
  const meta = decodeResultMeta('{"status": "FAILURE", "result": "oops"}', "id-1");
  assert.equal(meta.task_id, "id-1");
  const err = taskErrorFromMeta(meta);
  assert.equal(err.message, "Task id-1 failed: Exception: oops");
  assert.deepEqual(err.excMessage, ["oops"]);
  assert.equal(
    taskErrorFromMeta(decodeResultMeta('{"status": "FAILURE", "result": 7}', "id-2")).message,
    "Task id-2 failed: Exception: 7",
  );
  // A meta naming its own task keeps that name.
  assert.equal(decodeResultMeta('{"status": "SUCCESS", "task_id": "t"}', "id-3").task_id, "t");
});

Deno.test("results: a meta without a string status names the task it was read for", () => {
  assert.throws(() => decodeResultMeta('{"status": 5}', "id-4"), (err: unknown) => {
    assert.ok(err instanceof ProtocolError);
    assert.match(err.message, /result of task id-4 .*status/);
    return true;
  });
});
