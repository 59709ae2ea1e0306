/**
 * What a worker stores and sends when a canvas step finishes
 * (src/worker/chords.ts), for canvases too large to spread into a call.
 */

import assert from "node:assert/strict";
import type { Embed, SignatureDict } from "../src/protocol/message.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import type { TaskRequest } from "../src/protocol/task_request.ts";
import { canvasOutcome } from "../src/worker/chords.ts";

Deno.test("canvas outcome: a failed step of a 200,000-step chain marks every later step FAILURE", () => {
  const n = 200_000;
  const chain: SignatureDict[] = Array.from({ length: n }, (_, i) => ({
    task: "t.inc",
    args: [i],
    kwargs: {},
    options: { task_id: `step-${i}` },
    subtask_type: null,
    immutable: false,
  }));
  const embed: Embed = { callbacks: null, errbacks: null, chain, chord: null };
  const meta = encodeResultMeta({
    taskId: "first",
    status: "FAILURE",
    result: { exc_type: "ValueError", exc_message: ["boom"], exc_module: "builtins" },
    traceback: "Traceback: boom",
    dateDone: new Date(),
  });
  const out = canvasOutcome(
    { seq: 1, ok: false, meta, runtime: 1, followUp: { embed, value: null } },
    { embed, value: null },
    { id: "first" } as TaskRequest,
    { id: "first", rootId: "first", origin: "test@host", defaultQueue: "celery" },
    new Date(),
    [],
  );
  assert.equal(out.stores.length, n);
  assert.deepEqual(
    [out.stores[0].taskId, out.stores[n - 1].taskId, out.stores[n - 1].status],
    ["step-0", `step-${n - 1}`, "FAILURE"],
  );
});
