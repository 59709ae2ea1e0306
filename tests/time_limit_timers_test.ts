/**
 * TimeLimitTimers keeps one platform timer for every run: each limit must
 * still fire at its own time, whichever runs finish first, whatever the
 * order of their lengths, and not after a handler cleared it.
 */

import assert from "node:assert/strict";
import { TimeLimitTimers } from "../src/worker/time_limits.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  const { timers, fired } = noted();
  timers.start(1, { hard: 0.04, soft: null });
  await sleep(25);
  timers.start(2, { hard: 0.04, soft: null });
  timers.clear(1);
  await sleep(100);
  assert.deepEqual(fired.map((f) => f.what), ["hard 2 0.04"]);
  // Run 2 started at about 25 ms: its limit is due at about 65 ms, not at run 1's 40 ms.
  assert.ok(fired[0].at >= 62, `fired at ${fired[0].at} ms`);
  assert.ok(fired[0].at < 85, `fired at ${fired[0].at} ms, late`);
  assert.equal(timers.size, 0);
});

Deno.test("time limit timers: a shorter limit started after a longer one fires first, on time", async () => {
  const { timers, fired, since } = noted();
  timers.start(1, { hard: 0.3, soft: 0.2 });
  const started = since();
  timers.start(2, { hard: 0.02, soft: 0.01 });
  await sleep(60);
  assert.deepEqual(fired.map((f) => f.what), ["soft 2 0.01", "hard 2 0.02"]);
  assert.ok(fired[0].at - started >= 10 && fired[0].at - started < 30, `soft at ${fired[0].at}`);
  assert.ok(fired[1].at - started >= 20 && fired[1].at - started < 40, `hard at ${fired[1].at}`);
  assert.equal(timers.size, 1, "run 1 still has its limits");
  timers.clearAll();
  await sleep(300);
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
  timers.start(1, { hard: 0.02, soft: null });
  timers.start(2, { hard: 0.02, soft: null });
  timers.start(3, { hard: 0.05, soft: 0.02 });
  timers.start(4, { hard: 0.02, soft: null });
  await sleep(80);
  assert.deepEqual(seen, ["hard 1", "hard 4"]);
  assert.equal(timers.size, 0);
});

Deno.test("time limit timers: a run started again keeps only its new limits", async () => {
  const { timers, fired, since } = noted();
  timers.start(1, { hard: 0.02, soft: null });
  await sleep(10);
  const restarted = since();
  timers.start(1, { hard: 0.03, soft: null });
  assert.equal(timers.size, 1);
  await sleep(60);
  assert.deepEqual(fired.map((f) => f.what), ["hard 1 0.03"]);
  assert.ok(fired[0].at - restarted >= 30, `fired ${fired[0].at - restarted} ms after the restart`);
});

Deno.test("time limit timers: a limit that is not a finite number never fires and leaves the others theirs", async () => {
  const { timers, fired } = noted();
  timers.start(1, { hard: null, soft: NaN });
  timers.start(2, { hard: NaN, soft: null });
  timers.start(3, { hard: Infinity, soft: 0.01 });
  timers.start(4, { hard: 0.02, soft: null });
  timers.start(5, { hard: 0.06, soft: null });
  await sleep(120);
  assert.deepEqual(fired.map((f) => f.what), ["soft 3 0.01", "hard 4 0.02", "hard 5 0.06"]);
  assert.equal(timers.size, 0, "runs 1 and 2 have no limits, run 3 none left");
});
