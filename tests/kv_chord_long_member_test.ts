/**
 * A chord header member whose result is longer than one Deno KV value
 * (64 KiB) joins its chord on the KV backend: its join entry holds no
 * result, and the member that completes the join reads it from the
 * member's result meta (stored before the member joins, in parts). Before,
 * the join's commit threw `Value too large`: the member was never counted,
 * and the chord's body neither ran nor failed. When that meta is gone, the
 * chord fails with a Join error instead of waiting forever.
 */

import assert from "node:assert/strict";
import { openKvBackend } from "../src/backend/kv.ts";
import type { ChordFailure, ChordPart } from "../src/backend/port.ts";
import { pyJsonDumps } from "../src/protocol/json.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { ProtocolError } from "../protocol.ts";

const LONG = "x".repeat(100_000);

function part(groupId: string, index: number, resultJson: string): ChordPart {
  return {
    groupId,
    groupIndex: index,
    taskId: `${groupId}-m${index}`,
    state: "SUCCESS",
    resultJson,
  };
}

function success(taskId: string, result: unknown) {
  return {
    taskId,
    status: "SUCCESS" as const,
    meta: encodeResultMeta({ taskId, status: "SUCCESS", result, dateDone: new Date() }),
  };
}

Deno.test("kv chord: a member with a result longer than a KV value joins; the body gets it", async () => {
  const backend = await openKvBackend("kv://:memory:");
  try {
    await backend.setChordSize!("g", 2);
    await backend.store([success("g-m0", LONG)]);
    assert.equal(await backend.chordPartReturn!(part("g", 0, pyJsonDumps(LONG))), null);
    const members = await backend.chordPartReturn!(part("g", 1, "1"));
    assert.deepEqual(members, [
      { taskId: "g-m0", state: "SUCCESS", result: LONG },
      { taskId: "g-m1", state: "SUCCESS", result: 1 },
    ]);
  } finally {
    await backend.close();
  }
});

Deno.test("kv chord: a long member whose result meta is gone fails the chord with a Join error", async () => {
  const backend = await openKvBackend("kv://:memory:");
  try {
    await backend.setChordSize!("h", 2);
    // No meta stored for h-m0 (a task that ignores its result).
    assert.equal(await backend.chordPartReturn!(part("h", 0, pyJsonDumps(LONG))), null);
    const failure: ChordFailure = () => [{
      taskId: "h-body",
      status: "FAILURE",
      meta: encodeResultMeta({
        taskId: "h-body",
        status: "FAILURE",
        result: { exc_type: "ChordError", exc_message: ["join"], exc_module: "celery.exceptions" },
        dateDone: new Date(),
      }),
    }];
    await assert.rejects(
      backend.chordPartReturn!(part("h", 1, "1"), failure),
      (err) => err instanceof ProtocolError && /h-m0's result is too long/.test(err.message),
    );
    assert.equal((await backend.get("h-body"))?.status, "FAILURE");
  } finally {
    await backend.close();
  }
});
