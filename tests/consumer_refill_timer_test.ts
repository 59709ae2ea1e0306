/**
 * The take loop's wait for a refill (CPU-bound tasks: the prefetch window
 * waits for about half its slots before taking again) keeps one timer while
 * finished tasks wake the loop before it is due, and takes when it fires.
 */

import assert from "node:assert/strict";
import { Consumer } from "../src/worker/consumer.ts";
import type { Intake } from "../src/worker/intake.ts";
import type { WorkerState } from "../src/worker/worker_state.ts";
import { REFILL_WAIT_MS } from "../src/worker/prefetch_window.ts";

/** A worker state with just what the take loop reads; its sleep and wake are WorkerState's. */
function fakeState(take: (max: number) => Promise<never[]>) {
  const sleepers = new Set<() => void>();
  const state = {
    pool: { capacity: 128, concurrency: 2 },
    running: { size: 0 },
    slowSettling: () => 0,
    options: {},
    autoscaler: null,
    broker: { take: (_queues: string[], o: { max: number }) => take(o.max) },
    wake(): void {
      const all = [...sleepers];
      sleepers.clear();
      for (const r of all) r();
    },
    sleep(ms: number = Infinity): Promise<void> {
      return new Promise<void>((r) => {
        const timer = ms === Infinity ? undefined : setTimeout(() => wake(), ms);
        const wake = () => {
          clearTimeout(timer);
          sleepers.delete(wake);
          r();
        };
        sleepers.add(wake);
      });
    },
  };
  return state;
}

Deno.test("take loop: a refill wait keeps one timer across the wake-ups of finished tasks, and takes when it is due", async () => {
  const takes: { at: number; max: number }[] = [];
  const stopAfterTake = new AbortController();
  const state = fakeState((max) => {
    takes.push({ at: performance.now(), max });
    stopAfterTake.abort();
    return Promise.resolve([]);
  });
  const intake = { etaHeld: 0, backlog: 0 } as unknown as Intake;
  const consumer = new Consumer(state as unknown as WorkerState, intake, ["q"]);
  stopAfterTake.signal.addEventListener("abort", () => consumer.stop());
  // 5 ms tasks on 2 Web Workers: a window of 22, taken again once 10 are free.
  consumer.observe(Array.from({ length: 60 }, () => ({ blocked: 5 })));
  state.running.size = 22;
  // While the slots free, the clock stands still and the refill timer's callback waits: under
  // load the four wake-ups may take longer than the wait (25 ms), and the loop would then take
  // on one of them, as it should, not by its timer.
  const realNow = performance.now.bind(performance);
  let frozenAt: number | undefined;
  Object.defineProperty(performance, "now", {
    configurable: true,
    value: () => frozenAt ?? realNow(),
  });
  const freed = Promise.withResolvers<void>();
  const realSetTimeout = globalThis.setTimeout;
  let timersSet = 0;
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    timersSet++;
    return realSetTimeout(() => void freed.promise.then(fn), ms);
  }) as typeof setTimeout;
  try {
    consumer.start();
    await new Promise((r) => realSetTimeout(r, 5));
    assert.equal(timersSet, 0, "no slot free: it sleeps until woken, with no timer");
    frozenAt = realNow();
    const firstFree = frozenAt;
    for (let i = 0; i < 4; i++) {
      state.running.size--;
      state.wake();
      await new Promise((r) => realSetTimeout(r, 0));
      assert.equal(takes.length, 0, `${i + 1} of 10 free: no take yet`);
    }
    assert.equal(timersSet, 1, "one timer for the refill wait, not one per wake-up");
    frozenAt = undefined;
    freed.resolve();
    await consumer.done;
    assert.equal(takes.length, 1);
    assert.equal(takes[0].max, 4, "the free slots are taken when the wait is over");
    assert.ok(
      takes[0].at - firstFree >= REFILL_WAIT_MS - 1,
      `taken ${takes[0].at - firstFree} ms after the first slot freed, not before the wait's end`,
    );
  } finally {
    freed.resolve();
    Reflect.deleteProperty(performance, "now");
    globalThis.setTimeout = realSetTimeout;
    consumer.stop();
    state.wake();
    await consumer.done;
  }
});
