/**
 * Hostile replies to `inspect` / `control` / `status` from any node on the
 * broker: the command line shows them (or its `--json`) without throwing,
 * so one bad node does not hide the replies of the others.
 */

import assert from "node:assert/strict";
import { describeReply } from "../src/cli/inspect.ts";
import { jsonText } from "../src/protocol/json.ts";

const big = 123456789012345678901234567890n;

Deno.test("inspect replies: an integer beyond 2^53 is written with all its digits, not thrown", () => {
  assert.equal(jsonText({ "evil@h": big }), '{"evil@h":123456789012345678901234567890}');
  assert.equal(
    describeReply("clock", { clock: big }),
    '{\n  "clock": 123456789012345678901234567890\n}',
  );
  assert.equal(describeReply("revoked", [big, "a"]), "* 123456789012345678901234567890\n* a");
});

Deno.test("inspect replies: task lists of the wrong shape are shown, not thrown", () => {
  const active = describeReply("active", [
    { id: 5, name: null, args: big, time_start: "x", delivery_info: 7 },
    { id: "t2", name: "n", args: [1], time_start: 1e300 },
    null,
    5,
  ]);
  assert.match(active, /123456789012345678901234567890/);
  assert.doesNotThrow(() => describeReply("reserved", [{ time_start: big }]));
  assert.doesNotThrow(() => describeReply("scheduled", [5, null, {}, { request: null }]));
  assert.doesNotThrow(() => describeReply("active_queues", [null, 1]));
});
