/**
 * TimeLimitTimers keeps one platform timer for every run: each limit must
 * still fire at its own time, whichever runs finish first, whatever the
 * order of their lengths, and not after a handler cleared it.
 */

import assert from "node:assert/strict";
import { TimeLimitTimers } from "../src/worker/time_limits.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `done()` or 5 s. Lateness bounds below allow a loaded machine's timer slack (250 ms). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !done(); i++) await sleep(20);
}

const SLACK = 250;

/** Timers that note when each limit fires (ms since `t0`). */
function noted(onHard: (seq: number) => void = () => {}) {
  const t0 = performance.now();
  const fired: { what: string; at: number }[] = [];
  const timers = new TimeLimitTimers({
    soft: (seq, s) => fired.push({ what: `soft ${seq} ${s}`, at: performance.now() - t0 }),
    hard: (seq, s) => {
      fired.push({ what: `hard ${seq} ${s}`, at: performance.now() - t0 });
      onHard(seq);
    },
  });
  return { timers, fired, since: () => performance.now() - t0 };
}

Deno.test("time limit timers: the earliest run finishing first leaves the next one its own time", async () => {
  const { timers, fired, since } = noted();
  timers.start(1, { hard: 0.4, soft: null });
  await sleep(150);
  const second = since();
  timers.start(2, { hard: 0.4, soft: null });
  timers.clear(1);
  await until(() => fired.length > 0);
  await sleep(50);
  assert.deepEqual(fired.map((f) => f.what), ["hard 2 0.4"]);
  // Run 2's limit is due 400 ms after its start, not at run 1's 400 ms.
  assert.ok(fired[0].at - second >= 400, `fired ${fired[0].at - second} ms after run 2 started`);
  assert.ok(fired[0].at - second < 400 + SLACK, `fired ${fired[0].at - second} ms, late`);
  assert.equal(timers.size, 0);
});

Deno.test("time limit timers: a shorter limit started after a longer one fires first, on time", async () => {
  const { timers, fired, since } = noted();
  timers.start(1, { hard: 0.8, soft: 0.7 });
  const started = since();
  timers.start(2, { hard: 0.2, soft: 0.1 });
  await until(() => fired.length >= 2);
  assert.deepEqual(fired.map((f) => f.what), ["soft 2 0.1", "hard 2 0.2"]);
  const [soft, hard] = fired.map((f) => f.at - started);
  assert.ok(soft >= 100 && soft < 100 + SLACK, `soft at ${soft}`);
  assert.ok(hard >= 200 && hard < 200 + SLACK, `hard at ${hard}`);
  assert.equal(timers.size, 1, "run 1 still has its limits");
  timers.clearAll();
  await sleep(900);
  assert.equal(fired.length, 2, "nothing fires after clearAll");
});

Deno.test("time limit timers: runs cleared by a hard limit's handler do not fire after it", async () => {
  const seen: string[] = [];
  const timers: TimeLimitTimers = new TimeLimitTimers({
    soft: (seq) => seen.push(`soft ${seq}`),
    hard: (seq) => {
      seen.push(`hard ${seq}`);
      // As the threads pool does: a hard limit terminates the Web Worker, dropping its other runs.
      if (seq === 1) { for (const s of [2, 3]) timers.clear(s); }
    },
  });
  timers.start(1, { hard: 0.1, soft: null });
  timers.start(2, { hard: 0.1, soft: null });
  timers.start(3, { hard: 0.25, soft: 0.1 });
  timers.start(4, { hard: 0.1, soft: null });
  await until(() => seen.length >= 2);
  await sleep(300);
  assert.deepEqual(seen, ["hard 1", "hard 4"]);
  assert.equal(timers.size, 0);
});

Deno.test("time limit timers: a run started again keeps only its new limits", async () => {
  const { timers, fired, since } = noted();
  timers.start(1, { hard: 0.5, soft: null });
  await sleep(100);
  const restarted = since();
  timers.start(1, { hard: 0.3, soft: null });
  assert.equal(timers.size, 1);
  await until(() => fired.length > 0);
  await until(() => since() > 700); // past the first start's 500 ms
  assert.deepEqual(fired.map((f) => f.what), ["hard 1 0.3"]);
  assert.ok(
    fired[0].at - restarted >= 300,
    `fired ${fired[0].at - restarted} ms after the restart`,
  );
});

Deno.test("time limit timers: a limit that is not a finite number never fires and leaves the others theirs", async () => {
  const { timers, fired } = noted();
  timers.start(1, { hard: null, soft: NaN });
  timers.start(2, { hard: NaN, soft: null });
  timers.start(3, { hard: Infinity, soft: 0.05 });
  timers.start(4, { hard: 0.1, soft: null });
  timers.start(5, { hard: 0.3, soft: null });
  await until(() => fired.length >= 3);
  assert.deepEqual(fired.map((f) => f.what), ["soft 3 0.05", "hard 4 0.1", "hard 5 0.3"]);
  assert.equal(timers.size, 0, "runs 1 and 2 have no limits, run 3 none left");
});
