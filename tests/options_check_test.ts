/**
 * The checks `new Worker(...)` runs on its options before anything
 * connects: a threads pool without `appModule`, and a `heartbeatInterval`
 * outside 0 to what a timer holds, a `leakedThreadsGrace` that is no number
 * of seconds > 0, are refused with a message saying what
 * to change; the bounds themselves are taken.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Worker } from "../worker.ts";
import { MAX_TIMER_MS } from "../src/broker/long_timeout.ts";
import { checkWorkerOptions } from "../src/worker/options_check.ts";

const app = new Celery({ broker: "kv://:memory:" });

Deno.test("options check: the threads pool (the default) without appModule is refused", () => {
  const refusal = new TypeError(
    "The threads pool needs appModule: the URL of the module exporting the app",
  );
  assert.throws(() => checkWorkerOptions({ app }), refusal);
  assert.throws(() => checkWorkerOptions({ app, pool: "threads" }), refusal);
  assert.throws(() => new Worker({ app }), refusal, "the Worker constructor checks it");
  checkWorkerOptions({ app, pool: "threads", appModule: "file:///app.ts" });
  checkWorkerOptions({ app, pool: "inline" });
});

Deno.test("options check: heartbeatInterval is 0 to what a timer holds, in seconds", () => {
  for (const bad of [-0.001, MAX_TIMER_MS / 1000 + 0.001, Infinity, NaN]) {
    assert.throws(
      () => checkWorkerOptions({ app, pool: "inline", heartbeatInterval: bad }),
      new RangeError(
        "heartbeatInterval needs 0 to 2147483.647 seconds (24.8 days, what a timer holds), " +
          `got ${bad}`,
      ),
    );
  }
  for (const good of [0, 2, MAX_TIMER_MS / 1000]) {
    checkWorkerOptions({ app, pool: "inline", heartbeatInterval: good });
  }
});

Deno.test("options check: leakedThreadsGrace is a number of seconds > 0, refused at construction", () => {
  for (const bad of [0, -1, 1e306, Infinity, NaN]) {
    const refusal = new RangeError(
      `leakedThreadsGrace (--leaked-threads-grace) needs a number of seconds > 0, got ${bad}`,
    );
    assert.throws(
      () => checkWorkerOptions({ app, pool: "inline", leakedThreadsGrace: bad }),
      refusal,
    );
    assert.throws(
      () => new Worker({ app, appModule: "file:///app.ts", leakedThreadsGrace: bad }),
      refusal,
      "the Worker constructor checks it, before start()",
    );
  }
  for (const good of [0.001, 5, 86_400]) {
    checkWorkerOptions({ app, pool: "inline", leakedThreadsGrace: good });
  }
});
