/**
 * JSON that starts with a byte-order mark (U+FEFF) is refused, as Python's
 * json.loads (kombu, Celery) refuses it, with a reason naming the BOM.
 */

import assert from "node:assert/strict";
import {
  decodeControlRequest,
  decodeEventMessage,
  deserialize,
  encodeControlRequest,
  encodeEventMessage,
  makeEvent,
  type Message,
  ProtocolError,
} from "../protocol.ts";
import { readRpcResult, rpcResultMessage } from "../src/backend/rpc_message.ts";
import { decodeResultMeta } from "../src/protocol/result_meta.ts";

const BOM = new Uint8Array([0xef, 0xbb, 0xbf]);

/** `message` with a UTF-8 BOM before its body. */
function withBom(message: Message): Message {
  const body = new Uint8Array(BOM.length + message.body.length);
  body.set(BOM);
  body.set(message.body, BOM.length);
  return { ...message, body };
}

const namesBom = (err: unknown) =>
  err instanceof ProtocolError && /byte-order mark/.test(err.message);

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

Deno.test("task, control and event bodies starting with a BOM are refused naming the BOM", () => {
  const body = new TextEncoder().encode("\ufeff[[2, 3], {}, {}]");
  assert.throws(() => deserialize(body, "application/json", "utf-8", "t-2"), (err: unknown) => {
    assert.ok(namesBom(err), String(err));
    assert.equal((err as ProtocolError).taskId, "t-2");
    return true;
  });
  const request = encodeControlRequest(
    { method: "ping", arguments: {}, destination: null },
    { clock: 1, expires: 0 },
  );
  decodeControlRequest(request);
  assert.throws(() => decodeControlRequest(withBom(request)), namesBom);
  const event = encodeEventMessage(
    [makeEvent("task-started", { uuid: "t1" }, { hostname: "celeriac@h", pid: 7, clock: 3 })],
    "celeriac@h",
  );
  decodeEventMessage(event);
  assert.throws(() => decodeEventMessage(withBom(event)), namesBom);
});

Deno.test("an rpc result starting with a BOM is not taken for a result", () => {
  const m = rpcResultMessage(
    "t-3",
    '{"status": "SUCCESS", "result": 5, "task_id": "t-3", "traceback": null, "children": []}',
    { persistent: false },
  );
  assert.equal(readRpcResult(m)?.meta.result, 5);
  assert.equal(readRpcResult(withBom(m)), null);
});
