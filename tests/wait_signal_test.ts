/**
 * The signal of one result wait (`get()`, `onProgress()`, a group's
 * `get()`, following a chain's parents): the caller's signal, the timeout
 * and a listener's error on one controller, released when the wait ends —
 * its timer cleared, the caller's signal no longer followed. A wait used to
 * leave its `AbortSignal.timeout` pending until it fired: 1,000 `get({
 * timeout: 30_000 })` a second held 30,000 timers (18 MB of heap per
 * 30,000 waits).
 */

import assert from "node:assert/strict";
import { Celery, group, TimeoutError } from "../mod.ts";
import { encodeResultMeta, PUBLISHER } from "../protocol.ts";
import { waitSignal } from "../src/client/progress.ts";
import { longTimeout, MAX_TIMER_MS } from "../src/broker/long_timeout.ts";

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One wait the backend got: its signal, and whether that was aborted when the wait returned. */
interface Wait {
  signal: AbortSignal | undefined;
  abortedOnReturn?: boolean;
}

/** An app on an in-memory KV backend that publishes nothing, and the waits its backend got. */
async function recordingApp(): Promise<{ app: Celery; waits: Wait[] }> {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  app[PUBLISHER] = () => Promise.resolve();
  const backend = await app.resultBackend();
  const waits: Wait[] = [];
  const waitFor = backend.waitFor.bind(backend);
  backend.waitFor = (id, signal, onState) => {
    const wait: Wait = { signal };
    waits.push(wait);
    return waitFor(id, signal, onState).finally(() => wait.abortedOnReturn = signal?.aborted);
  };
  return { app, waits };
}

async function storeSuccess(app: Celery, id: string, result: unknown): Promise<void> {
  await (await app.resultBackend()).store([{
    taskId: id,
    status: "SUCCESS",
    meta: encodeResultMeta({ taskId: id, status: "SUCCESS", result }),
  }]);
}

Deno.test("a get() that returned leaves no timer behind: its timeout never fires afterwards", async () => {
  // A wait that outlasted its timeout (a loaded host) returns the stored result all the same, but
  // shows nothing of a timer left behind: tried again with a longer timeout.
  for (const timeout of [60, 240, 960, 3840]) {
    const { app, waits } = await recordingApp();
    try {
      const add = app.task("ws.add", (a: number, b: number) => a + b);
      const one = await add.delay(1, 2);
      await storeSuccess(app, one.id, 3);
      assert.equal(await one.get({ timeout }), 3);
      const g = await group([add.s(1, 1), add.s(2, 2)]).applyAsync();
      for (const [i, r] of g.children.entries()) await storeSuccess(app, r.id, 2 * (i + 1));
      assert.deepEqual(await g.get({ timeout }), [2, 4]);
      assert.equal(waits.length, 3);
      if (waits.some((w) => w.abortedOnReturn)) continue;
      // Timers fire in the order they are due: the waits' timeouts, set before this one with the
      // same delay, are past when it fires.
      await pause(timeout);
      assert.deepEqual(waits.map((w) => w.signal?.aborted), [false, false, false]);
      return;
    } finally {
      await app.close();
    }
  }
  assert.fail("every try's waits outlasted their timeout: the host was too busy to show anything");
});

Deno.test("get() past what one timer holds (24.8 days) waits, and the caller's abort ends it", async () => {
  const { app } = await recordingApp();
  try {
    const add = app.task("ws.add", (a: number, b: number) => a + b);
    const pending = await add.delay(1, 2);
    const started = performance.now();
    const stop = AbortSignal.timeout(100);
    await assert.rejects(
      pending.get({ timeout: MAX_TIMER_MS + 5_000, signal: stop }),
      (err: unknown) => !(err instanceof TimeoutError) && err === stop.reason,
    );
    assert.ok(performance.now() - started >= 90, "ended before the caller's abort");
    const g = await group([add.s(1, 1)]).applyAsync();
    await assert.rejects(
      g.get({ timeout: 2 * MAX_TIMER_MS, signal: AbortSignal.timeout(60) }),
      (err: unknown) => !(err instanceof TimeoutError),
    );
  } finally {
    await app.close();
  }
});

Deno.test("a get() that times out still throws TimeoutError, a group's too", async () => {
  const { app } = await recordingApp();
  try {
    const add = app.task("ws.add", (a: number, b: number) => a + b);
    const pending = await add.delay(1, 2);
    await assert.rejects(pending.get({ timeout: 40 }), (err: unknown) => {
      assert.ok(err instanceof TimeoutError, String(err));
      assert.match(err.message, /was not ready after 40 ms: it is still PENDING/);
      return true;
    });
    const g = await group([add.s(1, 1)]).applyAsync();
    await assert.rejects(g.get({ timeout: 40 }), TimeoutError);
  } finally {
    await app.close();
  }
});

Deno.test("a released wait's timeout never fires (its timer is cleared, not left pending)", async () => {
  const wait = waitSignal({ timeout: 40 });
  wait.release();
  await pause(120);
  assert.equal(wait.signal.aborted, false);
  assert.equal(wait.timedOut, false);
});

Deno.test("the timeout aborts the wait with a TimeoutError DOMException, as AbortSignal.timeout", async () => {
  const wait = waitSignal({ timeout: 20 });
  await pause(100);
  assert.equal(wait.signal.aborted, true);
  assert.equal(wait.timedOut, true);
  assert.equal((wait.signal.reason as DOMException).name, "TimeoutError");
  wait.release();
});

Deno.test("the caller's abort ends the wait with its reason, and is not a timeout", async () => {
  const caller = new AbortController();
  const wait = waitSignal({ timeout: 60, signal: caller.signal });
  caller.abort("stop");
  assert.equal(wait.signal.reason, "stop");
  await pause(120);
  assert.equal(wait.timedOut, false);
  wait.release();

  const before = new AbortController();
  before.abort("already");
  const late = waitSignal({ timeout: 10, signal: before.signal });
  assert.equal(late.signal.reason, "already");
  late.release();

  const after = new AbortController();
  const released = waitSignal({ signal: after.signal });
  released.release();
  after.abort("too late");
  assert.equal(released.signal.aborted, false);
});

Deno.test("a listener's abort is not a timeout", async () => {
  const wait = waitSignal({ timeout: 30 });
  const err = new Error("listener failed");
  wait.abort(err);
  await pause(80);
  assert.equal(wait.signal.reason, err);
  assert.equal(wait.timedOut, false);
  wait.release();
});

Deno.test("longTimeout past what one timer holds does not fire at once", async () => {
  let fired = false;
  const timer = longTimeout(MAX_TIMER_MS + 5_000, () => fired = true);
  await pause(50);
  timer.clear();
  assert.equal(fired, false);
});
