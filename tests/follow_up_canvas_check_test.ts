/**
 * A worker's follow-up that is a canvas (a chain's next step that is a
 * group, a chord or a chain) is checked as Celery 5.2.6's `apply_async` of
 * it checks each call it sends at once: a member the worker defines that
 * cannot take its call fails the step before it with Python's `TypeError`
 * (seen with a real Celery 5.2.6 worker: `chain(add.s(1, 2), group(one.s(),
 * add.s()))` stored `add(1, 2)` as FAILURE `TypeError("add() missing 1
 * required positional argument: 'y'")`), on Redis, RabbitMQ and KV. Here
 * nothing of it is sent (Celery has sent the members before the misfit).
 */

import assert from "node:assert/strict";
import { chain, group, GroupResult } from "../mod.ts";
import { redisKvAndRabbitMq, taskFailure, withWorker } from "./helpers/worker.ts";

const { all, cleanup } = await redisKvAndRabbitMq("fu-canvas");

for (const t of all) {
  Deno.test({
    name: `follow-up canvas check on ${t.name}: a group step whose member does not fit fails the ` +
      "step before it with TypeError, and none of it is sent",
    ignore: t.ignore,
  }, async () => {
    await withWorker(t, {}, async (client, worker) => {
      const s = (name: string, args: unknown[]) => client.signature(name, args);
      const members = group([s("t.positional", []), s("t.add", [])]);
      const r = await chain(s("t.add", [1, 2]), members).applyAsync();
      assert.ok(r instanceof GroupResult);
      const first = r.parent!;
      const err = await taskFailure(first.get({ timeout: 10_000 }));
      assert.equal(err.excType, "TypeError");
      assert.equal(err.message.includes("add() missing 1 required positional argument: 'b'"), true);
      // Nothing of the group went: its members stay PENDING, and the worker ran one task.
      for (const m of r.children) assert.equal(await client.asyncResult(m.id).state(), "PENDING");
      assert.deepEqual([worker.stats.succeeded, worker.stats.failed], [0, 1]);
    });
  });
}

Deno.test("follow-up canvas check: clean up", async () => {
  await cleanup();
});
