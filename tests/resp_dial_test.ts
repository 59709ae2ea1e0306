import assert from "node:assert/strict";
import { startWatchdog } from "../src/broker/resp_dial.ts";

Deno.test("startWatchdog: commands are given up only once they have waited the whole timeout, not counted from the last check that found none", async () => {
  const ms = 400; // checks every 100 ms
  let idle = true;
  let busySince = 0;
  const { promise, resolve } = Promise.withResolvers<number>();
  const timer = startWatchdog(
    ms,
    () => true,
    () => ({ idle, replies: 0 }),
    () => resolve(performance.now() - busySince),
  );
  try {
    // A command sent just before the second check: the first found nothing waiting.
    await new Promise((res) => setTimeout(res, 185));
    idle = false;
    busySince = performance.now();
    // The watchdog's timer is unref'd: this one keeps the test's event loop up meanwhile.
    const keep = setTimeout(() => {}, 5000);
    const waited = await promise.finally(() => clearTimeout(keep));
    assert.ok(waited >= ms, `given up after ${waited.toFixed(0)} ms of waiting`);
  } finally {
    clearInterval(timer);
  }
});

Deno.test("startWatchdog: a reply in time restarts the wait; an idle connection is never given up", async () => {
  let idle = false;
  let replies = 0;
  let silent = 0;
  const timer = startWatchdog(100, () => true, () => ({ idle, replies }), () => silent++);
  try {
    for (let i = 0; i < 6; i++) {
      await new Promise((res) => setTimeout(res, 50));
      replies++;
    }
    idle = true;
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(silent, 0);
    idle = false;
    await new Promise((res) => setTimeout(res, 300));
    assert.ok(silent > 0, "commands waiting 300 ms without a reply are given up");
  } finally {
    clearInterval(timer);
  }
});
