/**
 * What a worker records as a finished task's `children` for the follow-ups
 * it sends (a `link` callback, the next chain step): what Celery 5.2's
 * worker records, the result of what it applied first — a linked chain's
 * first step, a chord's header group (its body when the header is empty),
 * a group; of two or more callbacks, each group, then one new group of the
 * others; errbacks are not listed (Celery stores the failure before it
 * sends them). Python's `AsyncResult(id).children` and `collect()` read these.
 */

import assert from "node:assert/strict";
import { chainSignature, chordSignature, groupSignature } from "../protocol.ts";
import type { Embed } from "../protocol.ts";
import { failureFollowUps, type Parent, successFollowUps } from "../src/worker/follow_ups.ts";
import { taskSig } from "./helpers/signatures.ts";

const parent: Parent = { id: "p", rootId: "p", origin: "w@h", defaultQueue: "celery" };

function childrenAfter(embed: Partial<Embed>) {
  const full: Embed = { callbacks: null, errbacks: null, chain: null, chord: null, ...embed };
  return successFollowUps(full, 1, parent, new Date()).children;
}

Deno.test("a linked chain is recorded by its first step, as Celery's chain.run adds it", () => {
  const link = chainSignature([taskSig("t.add", "a", 1), taskSig("t.add", "b", 2)]);
  // Before: { id: "b" }, the chain's last step (Python's children name "a").
  assert.deepEqual(childrenAfter({ callbacks: [link] }), [{ id: "a" }]);
});

Deno.test("a chord as the next chain step or a callback is recorded by its header group", () => {
  const header = groupSignature([taskSig("t.add", "h1", 1), taskSig("t.add", "h2", 2)], {
    task_id: "g",
  });
  const step = chordSignature(header, taskSig("t.sum", "body"));
  const want = [{ id: "g", members: [{ id: "h1" }, { id: "h2" }] }];
  // Before: [{ id: "body" }].
  assert.deepEqual(childrenAfter({ chain: [step] }), want);
  assert.deepEqual(childrenAfter({ callbacks: [step] }), want);
});

Deno.test("a chord with an empty header is recorded by its body, which is sent at once", () => {
  const step = chordSignature(groupSignature([], { task_id: "g" }), taskSig("t.sum", "body"));
  assert.deepEqual(childrenAfter({ chain: [step] }), [{ id: "body" }]);
});

Deno.test("a task, a group and a chain after a task keep their records", () => {
  const group = groupSignature([
    chainSignature([taskSig("t.add", "c1", 1), taskSig("t.add", "c2", 2)]),
    taskSig("t.add", "m2", 3),
  ], { task_id: "g" });
  assert.deepEqual(childrenAfter({ callbacks: [group] }), [
    { id: "g", members: [{ id: "c2", parent: { id: "c1" } }, { id: "m2" }] },
  ]);
  assert.deepEqual(childrenAfter({ callbacks: [taskSig("t.add", "x", 1)] }), [{ id: "x" }]);
  assert.deepEqual(
    childrenAfter({ chain: [taskSig("t.add", "z", 3), taskSig("t.add", "y", 2)] }),
    [{ id: "y" }],
  );
});

Deno.test("two or more callbacks: groups first, then the others as one new group, as Celery 5.2", () => {
  // Celery's trace.py applies each group callback, then group(others).apply_async: one
  // GroupResult with a fresh id is the child, and each of the others is sent with its group_id.
  const group = groupSignature([taskSig("t.add", "m1", 1), taskSig("t.add", "m2", 2)], {
    task_id: "g",
  });
  const link = chainSignature([taskSig("t.add", "c1", 1), taskSig("t.add", "c2", 2)]);
  const full: Embed = {
    callbacks: [taskSig("t.add", "x", 1), group, link],
    errbacks: null,
    chain: null,
    chord: null,
  };
  const out = successFollowUps(full, 1, parent, new Date());
  assert.equal(out.children.length, 2);
  assert.deepEqual(out.children[0], { id: "g", members: [{ id: "m1" }, { id: "m2" }] });
  const wrapper = out.children[1];
  assert.ok(wrapper.id !== "g" && /^[0-9a-f-]{36}$/.test(wrapper.id), wrapper.id);
  assert.deepEqual(wrapper.members, [{ id: "x" }, { id: "c2", parent: { id: "c1" } }]);
  // Before: [{ id: "x" }, { id: "g", ... }, { id: "c1" }], x and c1 sent with no group.
  assert.deepEqual(out.publishes.map((p) => p.taskId), ["m1", "m2", "x", "c1"]);
  const messages = out.publishes.map((p) =>
    typeof p.message === "function" ? p.message() : p.message
  );
  // A chain joins the group by its last step (Celery's chain.freeze(group_id=...)).
  assert.deepEqual(messages.map((m) => m.headers.group), ["g", "g", wrapper.id, null]);
  const [, , embed] = JSON.parse(new TextDecoder().decode(messages[3].body)) as [
    unknown,
    unknown,
    { chain: { options: { task_id: string; group_id: string } }[] },
  ];
  const next = embed.chain[0].options;
  assert.deepEqual([next.task_id, next.group_id], ["c2", wrapper.id]);
  // Two tasks: one group of two.
  const two = childrenAfter({ callbacks: [taskSig("t.add", "a", 1), taskSig("t.add", "b", 2)] });
  assert.equal(two.length, 1);
  assert.deepEqual(two[0].members, [{ id: "a" }, { id: "b" }]);
});

Deno.test("errbacks are not children: Celery stores the failure before it sends them", () => {
  const embed: Embed = {
    callbacks: null,
    errbacks: [taskSig("t.on_error", "e1"), taskSig("t.on_error", "e2")],
    chain: null,
    chord: null,
  };
  const f = failureFollowUps(embed, parent, new Date());
  assert.equal(f.publishes.length, 2);
  // Before: [{ id: "e1" }, { id: "e2" }] (Python's AsyncResult(failed).children listed them).
  assert.deepEqual(f.children, []);
});

Deno.test("a failure's errbacks go as one new group, as Celery 5.2.6's group(errbacks).apply_async", () => {
  const embed: Embed = {
    callbacks: null,
    errbacks: [taskSig("t.on_error", "e1"), taskSig("t.on_error", "e2", "x")],
    chain: null,
    chord: null,
  };
  const failed = { ...parent, id: "f", rootId: "r" };
  const f = failureFollowUps(embed, failed, new Date());
  const sent = f.publishes.map((p) => typeof p.message === "function" ? p.message() : p.message);
  const heads = sent.map((m) => {
    const h = m.headers as Record<string, unknown>;
    return [h.id, h.parent_id, h.root_id, h.group_index];
  });
  // A real Celery 5.2.6 worker: the failed task as parent, its root, group_index None.
  assert.deepEqual(heads, [["e1", "f", "r", null], ["e2", "f", "r", null]]);
  const groups = sent.map((m) => (m.headers as Record<string, unknown>).group);
  // Before: each sent on its own, group None.
  assert.match(String(groups[0]), /^[0-9a-f-]{36}$/);
  assert.equal(groups[1], groups[0]);
  // Called with the failed task's id (prepended, as to any group member).
  const args = sent.map((m) => JSON.parse(new TextDecoder().decode(m.body))[0]);
  assert.deepEqual(args, [["f"], ["f", "x"]]);
});
