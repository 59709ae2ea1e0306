import assert from "node:assert/strict";
import { TimeLimitTimers } from "../src/worker/time_limits.ts";

Deno.test("a time limit beyond setTimeout's range (30 days) does not fire at once", async () => {
  const fired: string[] = [];
  const timers = new TimeLimitTimers({
    soft: (seq) => fired.push(`soft ${seq}`),
    hard: (seq) => fired.push(`hard ${seq}`),
  });
  timers.start(1, { hard: 30 * 86_400, soft: 25 * 86_400 });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(fired, []);
  timers.clearAll();
});
