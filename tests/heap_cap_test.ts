/**
 * The worker's own collections of its main thread's heap: one once settled
 * tasks have doubled the heap since the last, none without `gc()`.
 */

import assert from "node:assert/strict";
import { HeapCap } from "../src/worker/heap_cap.ts";

Deno.test("heap cap: collects every 1,024 tasks once the heap doubled, and measures from what it left", () => {
  let used = 10;
  const calls: unknown[] = [];
  const cap = new HeapCap((options) => {
    calls.push(options);
    used = 11;
  }, () => used);
  assert.equal(cap.enabled, true);
  used = 20;
  assert.equal(cap.settled(1000), false, "not looked at before 1,024 tasks");
  assert.equal(cap.settled(24), true);
  assert.deepEqual(calls, [{ type: "major" }]);
  used = 21; // < 2 × 11
  assert.equal(cap.settled(1024), false);
  used = 22;
  assert.equal(cap.settled(1024), true);
  assert.equal(calls.length, 2);
});

Deno.test("heap cap: a collection V8 made by itself lowers the base", () => {
  let used = 20;
  let collected = 0;
  const cap = new HeapCap(() => void collected++, () => used);
  used = 12; // V8 collected: 12 is the new base
  assert.equal(cap.settled(1024), false);
  used = 24;
  assert.equal(cap.settled(1024), true);
  assert.equal(collected, 1);
});

Deno.test("heap cap: does nothing without gc()", () => {
  const cap = new HeapCap(null, () => {
    throw new Error("not read");
  });
  assert.equal(cap.enabled, false);
  assert.equal(cap.settled(100_000), false);
});

Deno.test("heap cap: collect() collects now and measures growth from what it left", () => {
  let used = 20;
  let collected = 0;
  const cap = new HeapCap(() => {
    collected++;
    used = 12;
  }, () => used);
  cap.collect();
  assert.equal(collected, 1);
  used = 23; // < 2 × 12
  assert.equal(cap.settled(1024), false);
  new HeapCap(null, () => 0).collect(); // without gc(): nothing
});
