/**
 * Chord joins on the Redis and KV result backends: Celery 5.2's Redis keys
 * (`.s` with TTL and PUBLISH, `.j` sorted by group_index), exactly one
 * completer among concurrent members, redeliveries, saved groups.
 */

import assert from "node:assert/strict";
import { decodeGroupMeta, encodeGroupMeta, type ResultBackend } from "../protocol.ts";
import { openKvBackend, openRedisBackend } from "../transports.ts";
import { rawRedis, REDIS_URL } from "./helpers/redis.ts";

async function completers(backend: ResultBackend, gid: string, n: number): Promise<number[]> {
  await backend.setChordSize!(gid, n);
  const outcomes = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      backend.chordPartReturn!({
        groupId: gid,
        groupIndex: n - 1 - i,
        taskId: `t${n - 1 - i}`,
        state: "SUCCESS",
        resultJson: String(n - 1 - i),
      })),
  );
  const winners = outcomes.flatMap((o, i) => (o ? [i] : []));
  const members = outcomes.find((o) => o !== null)!;
  assert.deepEqual(members.map((m) => m.result), Array.from({ length: n }, (_, i) => i));
  return winners;
}

Deno.test("redis chord join: Celery's keys, TTLs, order by group_index, one completer of 200", async () => {
  const backend = await openRedisBackend(REDIS_URL);
  const redis = await rawRedis();
  const gid = crypto.randomUUID();
  const stem = `celery-taskset-meta-${gid}`;
  try {
    const sub = redis.duplicate();
    const published: string[] = [];
    sub.on("message", (_c: string, m: string) => published.push(m));
    await sub.subscribe(stem + ".s");
    await backend.setChordSize(gid, 2);
    assert.equal(await redis.get(stem + ".s"), "2");
    assert.equal(await redis.ttl(stem + ".s"), 86400);
    const first = await backend.chordPartReturn({
      groupId: gid,
      groupIndex: 1,
      taskId: "b",
      state: "FAILURE",
      resultJson: '{"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}',
    });
    assert.equal(first, null);
    assert.deepEqual(await redis.zrange(stem + ".j", "0", "-1", "WITHSCORES"), [
      '[1, "b", "FAILURE", {"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}]',
      "1",
    ]);
    assert.ok((await redis.ttl(stem + ".j")) > 86000);
    const done = await backend.chordPartReturn({
      groupId: gid,
      groupIndex: 0,
      taskId: "a",
      state: "SUCCESS",
      resultJson: "2",
    });
    assert.deepEqual(done?.map((m) => [m.taskId, m.state]), [["a", "SUCCESS"], ["b", "FAILURE"]]);
    await backend.chordCleanup(gid);
    assert.equal(await redis.exists(stem + ".j", stem + ".s", stem + ".t"), 0);
    assert.deepEqual(published, ["2"]);
    await sub.quit();

    const big = crypto.randomUUID();
    assert.equal((await completers(backend, big, 200)).length, 1);
    await backend.chordCleanup(big);
  } finally {
    await redis.del(stem + ".j", stem + ".s");
    await redis.quit();
    await backend.close();
  }
});

Deno.test("redis: a saved group is Celery's taskset meta, restored as written", async () => {
  const backend = await openRedisBackend(REDIS_URL);
  const gid = crypto.randomUUID();
  try {
    const meta = encodeGroupMeta(gid, ["a", "b"]);
    await backend.saveGroup(gid, meta);
    assert.equal(await backend.restoreGroup(gid), meta);
    assert.deepEqual(decodeGroupMeta(meta).members?.map((m) => m.id), ["a", "b"]);
    await backend.forgetGroup(gid);
    assert.equal(await backend.restoreGroup(gid), null);
  } finally {
    await backend.close();
  }
});

Deno.test("kv chord join: exactly one completer of 100, a redelivered member is not counted twice", async () => {
  const backend = await openKvBackend("kv://:memory:");
  try {
    assert.equal((await completers(backend, "g1", 100)).length, 1);
    await backend.chordCleanup("g1");
    await backend.setChordSize("g2", 2);
    const part = {
      groupId: "g2",
      groupIndex: 0,
      taskId: "a",
      state: "SUCCESS" as const,
      resultJson: "1",
    };
    assert.equal(await backend.chordPartReturn(part), null);
    assert.equal(
      await backend.chordPartReturn(part),
      null,
      "the same member twice does not complete",
    );
    const done = await backend.chordPartReturn({ ...part, taskId: "b", groupIndex: 1 });
    assert.deepEqual(done?.map((m) => m.result), [1, 1]);
    await backend.saveGroup("g3", encodeGroupMeta("g3", ["x"]));
    assert.equal(decodeGroupMeta((await backend.restoreGroup("g3"))!).members?.[0].id, "x");
  } finally {
    await backend.close();
  }
});
