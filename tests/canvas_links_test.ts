/**
 * Where a canvas's links and call options land in the messages it sends,
 * as in Celery 5.2: a nested chain's errbacks and callbacks, a group's
 * links added to its members' own, a chord's call options on its body. Pure.
 */

import assert from "node:assert/strict";
import {
  chainSignature,
  chordSignature,
  groupSignature,
  planCanvas,
  type SignatureDict,
} from "../protocol.ts";

function s(task: string, ...args: unknown[]): SignatureDict {
  return { task, args, kwargs: {}, options: {}, subtask_type: null, immutable: false };
}

const tasksOf = (sigs: unknown) => (sigs as SignatureDict[] | undefined)?.map((e) => e.task);

Deno.test("canvas links: a nested chain's errbacks go on each of its steps, its callbacks on its last", () => {
  const inner = {
    ...chainSignature([s("b"), s("c")]),
    options: { link_error: [s("eb")], link: [s("cb")] },
  };
  const plan = planCanvas(chainSignature([s("a"), inner, s("d")]));
  const [first] = plan.sends;
  assert.equal(first.task, "a");
  assert.equal(first.embed.errbacks, null, "the outer step is not the nested chain's");
  const [d, c, b] = first.embed.chain!;
  assert.deepEqual([b.task, c.task, d.task], ["b", "c", "d"]);
  assert.deepEqual(tasksOf(b.options.link_error), ["eb"]);
  assert.deepEqual(tasksOf(c.options.link_error), ["eb"]);
  assert.equal(d.options.link_error, undefined);
  assert.equal(b.options.link, undefined);
  assert.deepEqual(tasksOf(c.options.link), ["cb"]);
  assert.equal(d.options.link, undefined);
});

Deno.test("canvas links: a group's and a chord header's links add to the members' own", () => {
  const a = { ...s("a"), options: { link_error: [s("x")], link: [s("cx")] } };
  const grouped = planCanvas({
    ...groupSignature([a, s("b")]),
    options: { link_error: [s("y")], link: [s("cy")] },
  });
  assert.deepEqual(grouped.sends.map((m) => tasksOf(m.embed.errbacks)), [["x", "y"], ["y"]]);
  assert.deepEqual(grouped.sends.map((m) => tasksOf(m.embed.callbacks)), [["cx", "cy"], ["cy"]]);

  const header = { ...groupSignature([a, s("b")]), options: { link_error: [s("y")] } };
  const chorded = planCanvas(chordSignature(header, s("sum")));
  assert.deepEqual(chorded.sends.map((m) => tasksOf(m.embed.errbacks)), [["x", "y"], ["y"]]);
  assert.deepEqual(chorded.sends.map((m) => tasksOf(m.embed.callbacks)), [["cx"], undefined]);
});

Deno.test("canvas links: a chord's call options, and a chain's .set() before a chord, reach its body", () => {
  const chorded = planCanvas(chordSignature(groupSignature([s("a"), s("b")]), s("sum")), {
    options: { queue: "q" },
  });
  for (const m of chorded.sends) {
    assert.equal(m.options.queue, "q");
    assert.equal(m.embed.chord?.options.queue, "q");
  }
  const chord = chordSignature(groupSignature([s("a")]), s("sum"));
  const chained = planCanvas({ ...chainSignature([chord, s("next")]), options: { queue: "q" } });
  const [m] = chained.sends;
  assert.equal(m.options.queue, "q");
  assert.equal(m.embed.chord?.options.queue, "q");
  assert.deepEqual(tasksOf(m.embed.chord?.options.chain), ["next"], "the body still leads on");
});

Deno.test("canvas links: links given when applying a chord go on its body only, run once", () => {
  // Celery 5.2's chord.link / chord.link_error link the body; a header member that also
  // carried the call's link would run it once per member, N+1 times in all.
  const chorded = planCanvas(chordSignature(groupSignature([s("a"), s("b")]), s("sum")), {
    options: { link: [s("cb")], link_error: [s("eb")] },
  });
  assert.equal(chorded.sends.length, 2);
  for (const m of chorded.sends) {
    assert.equal(tasksOf(m.embed.callbacks), undefined, "not on a header member");
    assert.equal(tasksOf(m.embed.errbacks), undefined);
    assert.deepEqual(tasksOf(m.embed.chord?.options.link), ["cb"]);
    assert.deepEqual(tasksOf(m.embed.chord?.options.link_error), ["eb"]);
  }
});
