/**
 * A remote-control call's reply timeout past what a timer holds (2^31 - 1
 * ms, 24.8 days) waits, in steps, instead of ending at once with no
 * replies (a longer `setTimeout` fires after 1 ms). No worker answers: the
 * call ends only when its signal aborts. KV in a temp file.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";

Deno.test("control replies: a timeout of 3,000,000 s waits for replies, not ends at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-control-long-timeout-test-" });
  const app = new Celery({ broker: `kv://${dir}/b.sqlite` });
  const stop = new AbortController();
  const abort = setTimeout(() => stop.abort(), 400);
  try {
    const started = performance.now();
    const replies = await app.control.broadcast("ping", {}, {
      reply: true,
      timeout: 3_000_000,
      signal: stop.signal,
    });
    const waited = performance.now() - started;
    assert.deepEqual(replies, []);
    assert.ok(waited >= 350, `the call ended after ${Math.round(waited)} ms, before its signal`);
  } finally {
    clearTimeout(abort);
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});
