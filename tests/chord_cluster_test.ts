/**
 * Chord joins and saved groups on a Redis Cluster (3 masters on private
 * ports): a chord's keys share a slot (the group id is a hash tag), so the
 * join's MULTI works and exactly one of 100 concurrent members completes it;
 * on a spoiled size, the claim script (three keys) runs in that slot and
 * exactly one of two members at once fails the chord, the body's FAILURE
 * (in another slot) stored.
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { encodeGroupMeta, encodeResultMeta, ProtocolError } from "../protocol.ts";
import { openRedisBackend } from "../transports.ts";
import { privateServers } from "./helpers/redis_servers.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name: "redis cluster: chord join in one slot, one completer of 100; a spoiled size fails once",
  ignore: WITHOUT_REDIS,
}, async () => {
  const servers = await privateServers("chord-cluster", (s) => s.cluster());
  const base = servers.base;
  try {
    const backend = await openRedisBackend(`redis+cluster://127.0.0.1:${base}`);
    try {
      const gid = crypto.randomUUID();
      await backend.setChordSize(gid, 100);
      const outcomes = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          backend.chordPartReturn({
            groupId: gid,
            groupIndex: i,
            taskId: `t${i}`,
            state: "SUCCESS",
            resultJson: String(i),
          })),
      );
      const done = outcomes.filter((o) => o !== null);
      assert.equal(done.length, 1);
      assert.deepEqual(done[0]!.map((m) => m.result), Array.from({ length: 100 }, (_, i) => i));
      await backend.chordCleanup(gid);
      await backend.saveGroup(gid, encodeGroupMeta(gid, ["a"]));
      assert.equal(await backend.restoreGroup(gid), encodeGroupMeta(gid, ["a"]));
      const raw = new Redis.Cluster([{ host: "127.0.0.1", port: base }]);
      assert.equal(await raw.exists(`celery-taskset-meta-{${gid}}`), 1);
      assert.equal(await raw.exists(`celery-taskset-meta-{${gid}}.j`), 0);
      const spoiled = crypto.randomUUID();
      await raw.set(`celery-taskset-meta-{${spoiled}}.s`, "lots");
      // The body's result key is in another slot than the chord's: its FAILURE is stored before the claim.
      const bodyId = crypto.randomUUID();
      const failure = (err: ProtocolError) => [{
        taskId: bodyId,
        status: "FAILURE" as const,
        meta: encodeResultMeta({
          taskId: bodyId,
          status: "FAILURE",
          result: { exc_type: "ChordError", exc_message: [err.message], exc_module: "x" },
          dateDone: new Date(),
        }),
      }];
      const joins = await Promise.allSettled([0, 1].map((i) =>
        backend.chordPartReturn({
          groupId: spoiled,
          groupIndex: i,
          taskId: `s${i}`,
          state: "SUCCESS",
          resultJson: "1",
        }, failure)
      ));
      const rejected = joins.filter((j) => j.status === "rejected");
      assert.equal(rejected.length, 1, JSON.stringify(joins));
      assert.ok((rejected[0] as PromiseRejectedResult).reason instanceof ProtocolError);
      assert.equal(await raw.exists(`celery-taskset-meta-{${spoiled}}.s`), 0);
      assert.equal((await backend.get(bodyId))?.status, "FAILURE");
      raw.disconnect();
    } finally {
      await backend.close();
    }
  } finally {
    await servers.stop();
  }
});
