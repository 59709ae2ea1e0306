/**
 * Where a canvas's links and call options land in the messages it sends,
 * as in Celery 5.2: a nested chain's errbacks and callbacks, a group's
 * links added to its members' own, a chord's call options on its body. Pure.
 */

import assert from "node:assert/strict";
import { chainSignature, planCanvas, type SignatureDict } from "../protocol.ts";

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
