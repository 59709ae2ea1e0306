import assert from "node:assert/strict";
import { TimerQueue } from "../src/worker/timer_queue.ts";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("timer queue: items fire in due order, ties in insertion order", async () => {
  const fired: number[] = [];
  const q = new TimerQueue<number>((n) => fired.push(n));
  const base = Date.now() + 20;
  const dues = [5, 1, 9, 1, 0, 7, 3, 3, 8, 2];
  dues.forEach((d, i) => q.add(base + d, i));
  assert.equal(q.size, 10);
  await tick(80);
  const expected = dues.map((d, i) => ({ d, i })).sort((a, b) => a.d - b.d || a.i - b.i);
  assert.deepEqual(fired, expected.map((e) => e.i));
  assert.equal(q.size, 0);
});

Deno.test("timer queue: a cancelled item never fires; cancelling twice says false", async () => {
  const fired: string[] = [];
  const q = new TimerQueue<string>((s) => fired.push(s));
  const a = q.add(Date.now() + 10, "a");
  q.add(Date.now() + 15, "b");
  assert.equal(q.cancel(a), true);
  assert.equal(q.cancel(a), false);
  await tick(40);
  assert.deepEqual(fired, ["b"]);
});

Deno.test("timer queue: an earlier item re-arms the timer; clear returns items earliest first", async () => {
  const fired: string[] = [];
  const q = new TimerQueue<string>((s) => fired.push(s));
  q.add(Date.now() + 60_000, "far");
  q.add(Date.now() + 5, "near");
  await tick(30);
  assert.deepEqual(fired, ["near"]);
  q.add(Date.now() + 120_000, "farther");
  assert.deepEqual(q.items(), ["far", "farther"]);
  assert.deepEqual(q.clear(), ["far", "farther"]);
  assert.equal(q.size, 0);
});

Deno.test("timer queue: many random removals keep the heap ordered", () => {
  let now = 0;
  const fired: number[] = [];
  const q = new TimerQueue<number>((n) => fired.push(n), () => now);
  const handles = Array.from({ length: 500 }, (_, i) => q.add((i * 7919) % 1000, i));
  for (let i = 0; i < 500; i += 3) q.cancel(handles[i]);
  const left = q.items();
  const dues = left.map((i) => (i * 7919) % 1000);
  assert.deepEqual(dues, [...dues].sort((a, b) => a - b));
  assert.equal(left.length, 500 - 167);
  now = 2000;
  q.clear();
});

Deno.test("timer queue: cancelling the earliest items re-arms no timer each (arms lazily)", () => {
  const armed: number[] = [];
  const original = globalThis.setTimeout;
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    armed.push(ms ?? 0);
    return original(fn, ms);
  }) as typeof setTimeout;
  const q = new TimerQueue<number>(() => {});
  try {
    const base = Date.now() + 60_000;
    const handles = Array.from({ length: 1000 }, (_, i) => q.add(base + i, i));
    for (const h of handles.slice(0, 999)) q.cancel(h);
    // One timer for the first item, none per cancel (before: 1,000).
    assert.equal(armed.length, 1);
    assert.equal(q.size, 1);
  } finally {
    globalThis.setTimeout = original;
    q.clear();
  }
});

Deno.test("timer queue: after its earlier items are cancelled, an item runs at its time, not early nor late", async () => {
  const fired: { item: string; at: number }[] = [];
  const q = new TimerQueue<string>((item) => fired.push({ item, at: Date.now() }));
  const base = Date.now();
  const a = q.add(base + 30, "a");
  const b = q.add(base + 50, "b");
  q.add(base + 120, "c");
  q.cancel(a);
  q.cancel(b);
  await tick(60); // the timer armed for "a" fired early and re-armed for "c"
  assert.equal(fired.length, 0);
  q.add(base + 90, "d"); // earlier than "c": armed for it
  await tick(120);
  assert.deepEqual(fired.map((f) => f.item), ["d", "c"]);
  const [d, c] = fired;
  assert.ok(d.at >= base + 90 && d.at < base + 90 + 25, `d ran at +${d.at - base} ms`);
  assert.ok(c.at >= base + 120 && c.at < base + 120 + 25, `c ran at +${c.at - base} ms`);
  q.cancel(q.add(Date.now() + 60_000, "gone"));
  assert.equal(q.size, 0); // and no timer holds an empty queue (the op sanitizer checks)
});
