/**
 * Chord header members joining again (redelivered: their late-ack workers
 * killed after the join, before the message's ack), on Redis and KV: of two
 * members joining again after the join that completed the chord, before the
 * body was sent, only the completing one gets the members (the body goes
 * once); a chord that failed has its keys deleted by the worker, as after
 * its body's send, so its completing member joining again later does not
 * fail it (and send its errbacks) again.
 */
import assert from "node:assert/strict";
import { type Message, openBackend, openBroker, type SignatureDict } from "../protocol.ts";
import { addMessage } from "./helpers/deliveries.ts";
import { taskSig } from "./helpers/signatures.ts";
import { redisAndKv, taskFailure, withWorker } from "./helpers/worker.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const { transports, cleanup } = await redisAndKv("redeliv-chord");

for (const t of transports) {
  const ignore = t.name === "redis" && WITHOUT_REDIS;

  Deno.test({
    name: `redelivered chord join on ${t.name}: of two members joining again after the join ` +
      "that completed the chord, before its body was sent, only the completing one gets the members",
    ignore,
  }, async () => {
    const [group, a, b] = [1, 2, 3].map(() => crypto.randomUUID());
    const backend = await openBackend(t.backend);
    try {
      await backend.setChordSize!(group, 2);
      const part = (i: number, id: string) => ({
        groupId: group,
        groupIndex: i,
        taskId: id,
        state: "SUCCESS" as const,
        resultJson: String(i + 5),
      });
      // Both joined (b's join completed the chord); their workers were killed then, before
      // the body was sent, and both are redelivered: each joins again before the other's
      // body send and cleanup.
      assert.equal(await backend.chordPartReturn!(part(0, a)), null);
      assert.notEqual(await backend.chordPartReturn!(part(1, b)), null);
      assert.equal(await backend.chordPartReturn!({ ...part(0, a), again: true }), null);
      const members = await backend.chordPartReturn!({ ...part(1, b), again: true });
      assert.deepEqual(members?.map((m) => [m.taskId, m.result]), [[a, 5], [b, 6]]);
      // b's redelivery sends the body: a's joining again later still does not.
      assert.equal(await backend.chordPartReturn!({ ...part(0, a), again: true }), null);
      await backend.chordCleanup!(group);
    } finally {
      await backend.close();
    }
  });

  Deno.test({
    name: `redelivered chord join on ${t.name}: a failed chord's keys are deleted, so its ` +
      "completing member redelivered later does not fail it again",
    ignore,
  }, async () => {
    const queue = `rcj-${crypto.randomUUID().slice(0, 8)}`;
    const [group, a, b, bodyId, eb] = [1, 2, 3, 4, 5].map(() => crypto.randomUUID());
    const body = taskSig("t.positional", bodyId);
    body.options = { ...body.options, link_error: [taskSig("t.positional", eb)] };
    const backend = await openBackend(t.backend);
    try {
      await backend.setChordSize!(group, 2);
      const part = { groupId: group, groupIndex: 0, taskId: a, state: "SUCCESS" as const };
      assert.equal(await backend.chordPartReturn!({ ...part, resultJson: "5" }), null);
    } finally {
      await backend.close();
    }
    const failing = encodeTaskMessageOf(b, group, body);
    await withWorker(t, {}, async (client, worker) => {
      const broker = await openBroker(t.broker);
      try {
        await broker.publish(failing, { exchange: "", routingKey: queue });
      } finally {
        await broker.close();
      }
      const err = await taskFailure(client.asyncResult(bodyId).get({ timeout: 10_000 }));
      assert.equal(err.excType, "ChordError");
      assert.equal(await client.asyncResult(eb).get({ timeout: 10_000 }), bodyId);
      assert.equal(worker.stats.succeeded, 1, "the errback ran");
    }, queue);
    // b's worker killed after the chord failed, before b's ack: its redelivery joins again,
    // and, the chord's keys gone, does not complete (and fail) it again.
    const again = await openBackend(t.backend);
    try {
      const part = { groupId: group, groupIndex: 1, taskId: b, state: "FAILURE" as const };
      assert.equal(
        await again.chordPartReturn!({ ...part, resultJson: "null", again: true }),
        null,
      );
    } finally {
      await again.close();
    }
  });
}

/** Member `id` of chord `group` at index 1: `t.fail("boom")`, with `body`. */
function encodeTaskMessageOf(id: string, group: string, body: SignatureDict): Message {
  return addMessage(id, {
    task: "t.fail",
    args: ["boom"],
    group,
    groupIndex: 1,
    embed: { chord: body },
  });
}

Deno.test("redelivered chord join: clean up", async () => {
  await cleanup();
});
