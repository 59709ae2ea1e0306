/**
 * A publish that fails after the app's publish retries (the broker down at
 * send time) drops that run, as Celery 5.2.6's beat does (`apply_entry` logs
 * "Message Error" and the entry, advanced before the send, waits for its next
 * time): it is not sent again when the broker is back.
 */

import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { captureLogs } from "./helpers/logs.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { rawRedis } from "./helpers/redis.ts";
import { at, Beat, Celery, PeriodicTasks } from "../mod.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function text(r: LogRecord): string {
  return r.message.map((m) => typeof m === "string" ? m : String(m)).join("");
}

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

Deno.test("beat: a run whose publish fails (broker down) is dropped, as in Celery", async () => {
  const redis = await PrivateRedis.start();
  await redis.down();
  const logs = await captureLogs("info");
  const app = new Celery({
    broker: redis.url,
    backend: null,
    beatStore: "kv://:memory:",
    taskPublishRetryPolicy: { maxRetries: 1, intervalStep: 0.05, intervalMax: 0.05 },
    // Entries are ticked in name order: "a-once" comes before "b-marker" in every tick.
    beatSchedule: {
      "a-once": { task: "t.once", schedule: at(Date.now()), options: { queue: "q" } },
    },
  });
  const beat = new Beat({ app, leaseTime: 3, maxInterval: 0.2 });
  const periodic = new PeriodicTasks(app);
  try {
    await beat.start();
    const failed = (r: LogRecord) => r.level === "error" && /"a-once" \(t\.once\)/.test(text(r));
    await until(() => logs.some(failed), "the failed publish");
    await redis.up();
    // A marker sent after the broker is back: a retried "a-once" would go out before it, in an
    // earlier tick or earlier in the same one.
    await periodic.add("b-marker", {
      task: "t.marker",
      schedule: at(Date.now()),
      options: { queue: "q" },
    });
    await until(
      () => logs.some((r) => /Sending due task b-marker/.test(text(r))),
      "the marker's send",
    );
    assert.equal(beat.sent, 1, "only the marker");
    assert.equal(await app.queueDepth("q"), 1);
    const once = (await periodic.list()).find((r) => r.name === "a-once")!;
    assert.equal(once.totalRunCount, 1, "the run is recorded: it is not sent again");
    assert.equal(once.nextRunAt, null);
    const line = text(logs.find(failed)!);
    assert.match(line, /the run is dropped, as Celery's beat drops it/);
    assert.match(line, /taskPublishRetryPolicy/, "says what rides out a longer outage");
  } finally {
    await beat.stop();
    await periodic.close();
    await app.close();
    await reset();
    await redis.close();
  }
});

Deno.test("beat: the next run logged after a publish that blocked is not already past", async () => {
  const redis = await PrivateRedis.start();
  const logs = await captureLogs("info");
  const app = new Celery({
    broker: redis.url,
    backend: null,
    beatStore: "kv://:memory:",
    beatSchedule: { every: { task: "t.every", schedule: 1, options: { queue: "q" } } },
  });
  const beat = new Beat({ app, leaseTime: 30, maxInterval: 0.2 });
  const raw = await rawRedis(redis.url);
  const sends = () => logs.filter((r) => /Sending due task every/.test(text(r)));
  try {
    await beat.start();
    await until(() => sends().length >= 1, "the first send");
    // The broker answers nothing for 3 s: the next send (due 1 s after the first) blocks in its
    // publish until then, 1-2 s past the run due after it.
    await raw.call("CLIENT", "PAUSE", "3000", "ALL");
    await until(() => sends().length >= 2, "the send that blocked");
    for (const r of sends()) {
      const next = Date.parse(String(r.properties.next));
      // Was the run due 1 s after the blocked one's slot: 1-2 s before the line was written.
      assert.ok(
        next >= r.timestamp - 500,
        `logged at ${new Date(r.timestamp).toISOString()}: ${text(r)}`,
      );
    }
  } finally {
    await beat.stop();
    raw.disconnect();
    await app.close();
    await reset();
    await redis.close();
  }
});

Deno.test("beat: an entry whose args its task's handler cannot take is logged as such, not sent", async () => {
  const logs = await captureLogs("info");
  const app = new Celery({
    broker: "kv://:memory:",
    backend: null,
    beatStore: "kv://:memory:",
    beatSchedule: {
      "a-short": { task: "t.add", schedule: at(Date.now()), args: [1], options: { queue: "q" } },
    },
  });
  const beat = new Beat({ app, leaseTime: 3, maxInterval: 0.2 });
  try {
    await beat.start();
    // Registered after start(), which refuses arguments its app's own task cannot take.
    app.task("t.add", (a: number, b: number) => a + b);
    const failed = (r: LogRecord) => r.level === "error" && /"a-short" \(t\.add\)/.test(text(r));
    await until(() => logs.some(failed), "the refused send");
    const line = text(logs.find(failed)!);
    // Before: it was sent, and its worker failed it with this TypeError.
    assert.match(line, /cannot be sent \(fix the entry's args\/kwargs\); the run is dropped/);
    assert.match(line, /add\(\) missing 1 required positional argument: 'b'/);
    assert.equal(beat.sent, 0);
    assert.equal(await app.queueDepth("q"), 0);
  } finally {
    await beat.stop();
    await app.close();
    await reset();
  }
});
