/**
 * Hostile task bodies: args that are not an array or kwargs that are not an
 * object are refused with a ProtocolError that describes the value (an
 * integer beyond 2^53 too, which JSON.stringify cannot print), and by its
 * first 100 characters only.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { decodeResultMeta } from "../protocol.ts";
import { runTask } from "../src/worker/executor.ts";
import { runRequest } from "./helpers/run_info.ts";

/** The refusal and the stored FAILURE's message of a `tasks.add` run of `body`. */
async function refusal(body: string): Promise<{ refused: string; stored: string }> {
  const app = new Celery({ broker: "kv://:memory:" });
  app.task("tasks.add", (a: number, b: number) => a + b);
  try {
    const req = runRequest(1, new TextEncoder().encode(body));
    const out = await runTask(app.tasks, req, new AbortController().signal);
    assert.ok(out.refused !== undefined, "refused");
    const exc = decodeResultMeta(out.meta!).result as { exc_type: string; exc_message: string[] };
    assert.equal(exc.exc_type, "ProtocolError");
    return { refused: out.refused, stored: exc.exc_message[0] };
  } finally {
    await app.close();
  }
}

Deno.test("hostile body: args or kwargs of an integer beyond 2^53 are refused as a ProtocolError", async () => {
  const big = "123456789012345678901234567890";
  // Before: "Do not know how to serialize a BigInt" (a TypeError).
  for (
    const [body, want] of [
      [`[${big}, {}, {}]`, `Task args must be an array, got ${big}n`],
      [`[[], ${big}, {}]`, `Task kwargs must be an object, got ${big}n`],
    ]
  ) {
    const { refused, stored } = await refusal(body);
    assert.match(refused, new RegExp(want));
    assert.match(stored, new RegExp(want));
  }
});

Deno.test("hostile body: args or kwargs of megabytes are described by their first 100 characters", async () => {
  const huge = "x".repeat(2_000_000);
  // Before: the whole value was in the refusal, the stored FAILURE, the park reason and the log.
  for (
    const [body, want] of [
      [`["${huge}", {}, {}]`, `Task args must be an array, got "${"x".repeat(100)}…"$`],
      [`[[], ["${huge}"], {}]`, "Task kwargs must be an object, got an array$"],
      [`[[], "${huge}", {}]`, `Task kwargs must be an object, got "${"x".repeat(100)}…"$`],
    ]
  ) {
    const { refused, stored } = await refusal(body);
    assert.ok(refused.length < 400, `${refused.length} characters`);
    assert.match(refused, new RegExp(want));
    assert.match(stored, new RegExp(want));
  }
});
