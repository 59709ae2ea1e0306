/**
 * What a worker records as a finished task's `children` for the follow-ups
 * it sends (a `link` callback, the next chain step): what Celery 5.2's
 * worker records, the result of what it applied first — a linked chain's
 * first step, a chord's header group (its body when the header is empty),
 * a group; errbacks are not listed (Celery stores the failure before it
 * sends them). Python's `AsyncResult(id).children` and `collect()` read these.
 */

import assert from "node:assert/strict";
import { chainSignature, chordSignature, groupSignature } from "../protocol.ts";
import type { Embed, SignatureDict } from "../protocol.ts";
import { failureFollowUps, type Parent, successFollowUps } from "../src/worker/follow_ups.ts";

const sig = (task: string, id: string, ...args: unknown[]): SignatureDict => ({
  task,
  args,
  kwargs: {},
  options: { task_id: id },
  subtask_type: null,
  immutable: false,
});

const parent: Parent = { id: "p", rootId: "p", origin: "w@h", defaultQueue: "celery" };

function childrenAfter(embed: Partial<Embed>) {
  const full: Embed = { callbacks: null, errbacks: null, chain: null, chord: null, ...embed };
  return successFollowUps(full, 1, parent, new Date()).children;
}

Deno.test("a linked chain is recorded by its first step, as Celery's chain.run adds it", () => {
  const link = chainSignature([sig("t.add", "a", 1), sig("t.add", "b", 2)]);
  // Before: { id: "b" }, the chain's last step (Python's children name "a").
  assert.deepEqual(childrenAfter({ callbacks: [link] }), [{ id: "a" }]);
});

Deno.test("a chord as the next chain step or a callback is recorded by its header group", () => {
  const header = groupSignature([sig("t.add", "h1", 1), sig("t.add", "h2", 2)], {
    task_id: "g",
  });
  const step = chordSignature(header, sig("t.sum", "body"));
  const want = [{ id: "g", members: [{ id: "h1" }, { id: "h2" }] }];
  // Before: [{ id: "body" }].
  assert.deepEqual(childrenAfter({ chain: [step] }), want);
  assert.deepEqual(childrenAfter({ callbacks: [step] }), want);
});

Deno.test("a chord with an empty header is recorded by its body, which is sent at once", () => {
  const step = chordSignature(groupSignature([], { task_id: "g" }), sig("t.sum", "body"));
  assert.deepEqual(childrenAfter({ chain: [step] }), [{ id: "body" }]);
});

Deno.test("a task, a group and a chain after a task keep their records", () => {
  const group = groupSignature([
    chainSignature([sig("t.add", "c1", 1), sig("t.add", "c2", 2)]),
    sig("t.add", "m2", 3),
  ], { task_id: "g" });
  assert.deepEqual(childrenAfter({ callbacks: [sig("t.add", "x", 1), group] }), [
    { id: "x" },
    { id: "g", members: [{ id: "c2", parent: { id: "c1" } }, { id: "m2" }] },
  ]);
  assert.deepEqual(
    childrenAfter({ chain: [sig("t.add", "z", 3), sig("t.add", "y", 2)] }),
    [{ id: "y" }],
  );
});

Deno.test("errbacks are not children: Celery stores the failure before it sends them", () => {
  const embed: Embed = {
    callbacks: null,
    errbacks: [sig("t.on_error", "e1"), sig("t.on_error", "e2")],
    chain: null,
    chord: null,
  };
  const f = failureFollowUps(embed, parent, new Date());
  assert.equal(f.publishes.length, 2);
  // Before: [{ id: "e1" }, { id: "e2" }] (Python's AsyncResult(failed).children listed them).
  assert.deepEqual(f.children, []);
});
