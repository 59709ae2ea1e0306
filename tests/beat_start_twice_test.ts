/**
 * `Beat.start()` called again (a retry wrapper, a framework's second init) returns the first
 * call's promise: one loop, one schedule store connection. It started a second loop, whose
 * store connection replaced the first one's and was never closed (review 33: the process did
 * not exit after stop() and app.close(); here Deno's resource sanitizer sees the leak).
 */

import assert from "node:assert/strict";
import { Beat, Celery } from "../mod.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { command } from "./helpers/redis_servers.ts";
import { until } from "./helpers/waits.ts";

/** The connections the server has, but the one that asks. */
async function connections(port: number): Promise<number> {
  const list = String(await command(port, "CLIENT", "LIST"));
  return list.split("\n").filter((l) => l.trim() !== "").length - 1;
}

Deno.test("beat: start() twice runs one loop and leaks no store connection", async () => {
  const redis = await PrivateRedis.start();
  const app = new Celery({
    broker: redis.url,
    backend: null,
    beatSchedule: { tick: { task: "t.tick", schedule: "200ms", options: { queue: "q" } } },
  });
  const beat = new Beat({ app, leaseTime: 3, maxInterval: 0.2 });
  try {
    const first = beat.start();
    const second = beat.start(); // while the first is starting
    await Promise.all([first, second]);
    const third = beat.start(); // once running
    await until("two sends", () => beat.sent >= 2);
    await beat.stop();
    await app.close();
    // Before: the second loop's store connection stayed open (the process never exited).
    await until("every connection closed", async () => await connections(redis.port) === 0);
    assert.equal(second, first);
    assert.equal(third, first);
    assert.equal(beat.start(), first, "a stopped beat does not start again");
  } finally {
    await beat.stop();
    await app.close();
    await redis.close();
  }
});

Deno.test("beat: a start that failed may be called again", async () => {
  // No store a beat can use on an amqp:// broker: start() fails, and a second call tries again.
  const app = new Celery({ broker: "amqp://guest:guest@127.0.0.1:1//", backend: null });
  const beat = new Beat({ app });
  try {
    const first = beat.start();
    await assert.rejects(first, { name: "BeatStoreError" });
    const again = beat.start();
    assert.notEqual(again, first, "a failed start is tried again");
    await assert.rejects(again, { name: "BeatStoreError" });
  } finally {
    await beat.stop();
    await app.close();
  }
});
