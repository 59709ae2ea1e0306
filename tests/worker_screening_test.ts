/**
 * Screening of redelivered messages on Redis: a task whose result is
 * already terminal is not run again (duplicate suppressed), a message whose
 * consumers died holding it `maxDeliveries` times is parked as poison, and
 * the restore sweep counts each restore in `x-delivery-count`.
 */

import assert from "node:assert/strict";
import { TaskError } from "../mod.ts";
import type { SignatureDict } from "../protocol.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { encodeEnvelope } from "../src/protocol/envelope.ts";
import { GROUP_META_PREFIX } from "../src/backend/redis_chord.ts";
import { PyFloat, pyJsonDumps } from "../src/protocol/json.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { encodeChordMember } from "../src/protocol/signature.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { addMessage } from "./helpers/deliveries.ts";
import { REFUSED_MODULE } from "../src/worker/result_entries.ts";
import { taskSig } from "./helpers/signatures.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { redisAndKv, withWorker } from "./helpers/worker.ts";

const { transports, redisPrefix, kvDir } = await redisAndKv("screen");
const redis = transports[0];

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `worker screening: ${name}`, ignore: WITHOUT_REDIS }, fn);

async function until(ok: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function push(
  queue: string,
  id: string,
  redelivered: boolean,
  headers = {},
  body?: Uint8Array,
  chord?: { group: string; groupIndex: number; body: SignatureDict },
) {
  const r = await rawRedis();
  const task = addMessage(id, {
    headers,
    ...(chord
      ? { group: chord.group, groupIndex: chord.groupIndex, embed: { chord: chord.body } }
      : {}),
  });
  const msg = body ? { ...task, body } : task;
  await r.lpush(
    redisPrefix + queue,
    encodeEnvelope(msg, { exchange: "", routing_key: queue }, crypto.randomUUID(), redelivered),
  );
  await r.quit();
}

test("a redelivered task whose SUCCESS is stored is acknowledged without running again", async () => {
  await withWorker(redis, {}, async (client, worker, queue) => {
    const backend = await client.resultBackend();
    const done = crypto.randomUUID();
    await backend.store([{
      taskId: done,
      status: "SUCCESS",
      meta: encodeResultMeta({ taskId: done, status: "SUCCESS", result: "first run" }),
    }]);
    await push(queue, done, true);
    const fresh = crypto.randomUUID();
    await push(queue, fresh, true); // redelivered, but it never finished: it runs
    assert.equal(await client.asyncResult(fresh).get({ timeout: 10_000 }), 5);
    const r = await rawRedis();
    await until(async () =>
      (await r.llen(redisPrefix + queue)) === 0 && (await r.hlen(redisPrefix + "unacked")) === 0
    );
    await r.quit();
    assert.equal(worker.stats.succeeded, 1, "only the unfinished one ran");
    assert.equal(await client.asyncResult(done).get({ timeout: 1000 }), "first run");
  });
});

test("a redelivered chord member whose result is stored joins its chord again, counted once", async () => {
  // As a late-ack member whose worker was killed after storing its result: before, it was
  // acknowledged without joining, and its chord waited for good.
  await withWorker(redis, {}, async (client, worker, queue) => {
    const backend = await client.resultBackend();
    const group = crypto.randomUUID();
    const bodyId = crypto.randomUUID();
    const body: SignatureDict = {
      task: "t.positional",
      args: [],
      kwargs: {},
      options: { task_id: bodyId },
      subtask_type: null,
      immutable: false,
    };
    await backend.setChordSize!(group, 2);
    const [m1, m2] = [crypto.randomUUID(), crypto.randomUUID()];
    await push(queue, m1, false, {}, undefined, { group, groupIndex: 0, body });
    await until(async () => (await backend.get(m1))?.status === "SUCCESS");
    // m1 again, joined already: not counted a second time (the body would go with m2 missing).
    await push(queue, m1, true, {}, undefined, { group, groupIndex: 0, body });
    const r = await rawRedis();
    await until(async () =>
      (await r.llen(redisPrefix + queue)) === 0 && (await r.hlen(redisPrefix + "unacked")) === 0
    );
    await r.quit();
    await backend.store([{
      taskId: m2,
      status: "SUCCESS",
      meta: encodeResultMeta({ taskId: m2, status: "SUCCESS", result: 5 }),
    }]);
    assert.equal((await backend.get(bodyId))?.status ?? "PENDING", "PENDING");
    await push(queue, m2, true, {}, undefined, { group, groupIndex: 1, body });
    assert.deepEqual(await client.asyncResult(bodyId).get({ timeout: 10_000 }), [5, 5]);
    // Run: m1 once and the body; the redeliveries were not run again.
    assert.equal(worker.stats.succeeded, 2);
  });
});

test("a chord member re-joining with a whole float result (1.0 read back as 1) is counted once", async () => {
  // Its first join recorded `1.0`; the stored result reads back as `1`, so a new entry made
  // from it was a second member: the chord reached its size with one member missing.
  await withWorker(redis, {}, async (client, _worker, queue) => {
    const backend = await client.resultBackend();
    const [group, bodyId, m1] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    const body: SignatureDict = taskSig("t.positional", bodyId);
    await backend.setChordSize!(group, 2);
    const one = new PyFloat(1);
    await backend.store([{
      taskId: m1,
      status: "SUCCESS",
      meta: encodeResultMeta({ taskId: m1, status: "SUCCESS", result: one }),
    }]);
    const r = await rawRedis();
    const joinKey = `${redisPrefix}${GROUP_META_PREFIX}${group}.j`;
    await r.zadd(joinKey, 0, encodeChordMember(m1, "SUCCESS", pyJsonDumps(one)));
    await push(queue, m1, true, {}, undefined, { group, groupIndex: 0, body });
    await until(async () =>
      (await r.llen(redisPrefix + queue)) === 0 && (await r.hlen(redisPrefix + "unacked")) === 0
    );
    assert.equal(await r.zcard(joinKey), 1);
    await r.quit();
    assert.equal((await backend.get(bodyId))?.status ?? "PENDING", "PENDING");
  });
});

test("a requeued message parked unrun (its FAILURE a refusal such as NotRegistered) runs", async () => {
  // `parked --requeue` marks messages redelivered; the FAILURE stored when an unknown task
  // was parked must not make it a duplicate once a worker has the task. Nor must the
  // InternalError stored when the worker's last resort parked a message it failed to receive.
  await withWorker(redis, {}, async (client, worker, queue) => {
    const backend = await client.resultBackend();
    const refusals = [
      { exc_type: "NotRegistered", exc_module: "celery.exceptions", exc_message: ["t.add"] },
      {
        exc_type: "InternalError",
        exc_module: REFUSED_MODULE,
        exc_message: ["worker error while receiving it: boom"],
      },
    ];
    for (const [i, refused] of refusals.entries()) {
      const parked = crypto.randomUUID();
      await backend.store([{
        taskId: parked,
        status: "FAILURE",
        meta: encodeResultMeta({ taskId: parked, status: "FAILURE", result: refused }),
      }]);
      await push(queue, parked, true);
      await until(async () => (await backend.get(parked))?.status === "SUCCESS");
      assert.equal(worker.stats.succeeded, i + 1, refused.exc_type);
    }
  });
});

test("a requeued message parked for a malformed body is parked again, not dropped as a duplicate", async () => {
  // Its FAILURE (ProtocolError) was stored when it was parked unrun: a requeue (which marks it
  // redelivered) must find it still refused and park it again for the operator.
  await withWorker(redis, {}, async (client, _worker, queue) => {
    const broker = await client.broker();
    const id = crypto.randomUUID();
    await push(queue, id, false, {}, new TextEncoder().encode("not json"));
    const parkedAt = async () =>
      (await broker.listParked()).find((p) => p.taskId === id)?.parkedAt.getTime() ?? 0;
    await until(async () => (await parkedAt()) > 0);
    const first = await parkedAt();
    const stored = await (await client.resultBackend()).get(id);
    assert.equal((stored?.result as { exc_type?: string }).exc_type, "ProtocolError");
    assert.ok((await broker.requeueParked()) >= 1);
    await until(async () => (await parkedAt()) > first);
  });
});

test("a message whose consumers died 5 times is parked as poison with a FAILURE", async () => {
  await withWorker(redis, {}, async (client, worker, queue) => {
    const id = crypto.randomUUID();
    await push(queue, id, true, { "x-delivery-count": 5 });
    const err = await client.asyncResult(id).get({ timeout: 10_000 }).then(() => null, (e) => e);
    assert.ok(err instanceof TaskError);
    assert.equal(err.excType, "PoisonMessage");
    assert.equal(worker.stats.succeeded, 0);
    assert.deepEqual([worker.stats.received, worker.stats.parked], [1, 1], "received, parked");
    const parked = await (await client.broker()).listParked();
    assert.match(parked.find((p) => p.taskId === id)?.reason ?? "", /poison message: given back 5/);
    // Below the limit it runs.
    const ok = crypto.randomUUID();
    await push(queue, ok, true, { "x-delivery-count": 4 });
    assert.equal(await client.asyncResult(ok).get({ timeout: 10_000 }), 5);
  });
});

test("a first delivery carrying x-delivery-count runs: only redeliveries are counted", async () => {
  // Sent with the header, or moved off a quorum queue (shovel, celery migrate): never given back here.
  await withWorker(redis, {}, async (client, worker, queue) => {
    const id = crypto.randomUUID();
    await push(queue, id, false, { "x-delivery-count": 7 });
    assert.equal(await client.asyncResult(id).get({ timeout: 10_000 }), 5);
    assert.deepEqual([worker.stats.succeeded, worker.stats.parked], [1, 0], "succeeded, parked");
  });
});

test("the restore sweep counts each restore in x-delivery-count", async () => {
  const prefix = uniquePrefix("restores");
  const broker = await openRedisBroker(
    `${REDIS_URL}?global_keyprefix=${prefix}&visibility_timeout=1`,
    { restoreInterval: 3600 },
  );
  try {
    const q = `restore-${crypto.randomUUID().slice(0, 8)}`;
    await broker.publish(
      encodeTaskMessage({
        task: "t.add",
        id: "r1",
        args: [],
        kwargs: {},
        now: new Date(),
        origin: "o",
        replyTo: "",
      }),
      { routingKey: q },
    );
    for (const expected of [undefined, 1, 2]) {
      const [d] = await broker.take([q], { max: 1, signal: AbortSignal.timeout(3000) });
      assert.equal(d.headers["x-delivery-count"], expected);
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal(await broker.restoreVisible(), 1);
    }
  } finally {
    await broker.close();
    await deleteKeys(prefix);
  }
});

Deno.test("worker screening: clean up", async () => {
  if (!WITHOUT_REDIS) await deleteKeys(redisPrefix);
  await Deno.remove(kvDir, { recursive: true });
});
