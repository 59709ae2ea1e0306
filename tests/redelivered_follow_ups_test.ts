/**
 * A late-ack task redelivered with its SUCCESS stored (a suppressed
 * duplicate: its worker was killed after storing the result, before sending
 * what follows it) sends its `link` callbacks and next chain step again from
 * the stored result, but not one whose own result is stored as finished, on
 * Redis, RabbitMQ and KV; one with its FAILURE stored sends its errbacks
 * again (not an old-style one, nor a finished one) and joins the chord
 * member later in its chain as failed. The redelivery is made as `parked
 * --requeue` makes one: the message is taken, parked, and requeued marked
 * redelivered.
 */

import assert from "node:assert/strict";
import { openBackend, openBroker, type SignatureDict } from "../protocol.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { addMessage } from "./helpers/deliveries.ts";
import { taskSig } from "./helpers/signatures.ts";
import { redisKvAndRabbitMq, taskFailure, withWorker } from "./helpers/worker.ts";

/** A frozen `t.add` signature with `arg` (the result prepended to it). */
const add = (id: string, arg: number): SignatureDict => taskSig("t.add", id, arg);

const { all, cleanup } = await redisKvAndRabbitMq("redeliv-fu");

/** What the redelivered task stored: SUCCESS `5`, FAILURE with a `ValueError`, or REVOKED. */
const STORED = {
  SUCCESS: 5,
  FAILURE: { exc_type: "ValueError", exc_message: ["boom"], exc_module: "builtins" },
  REVOKED: {
    exc_type: "TaskRevokedError",
    exc_message: ["revoked"],
    exc_module: "celery.exceptions",
  },
};

/**
 * Store `status` (SUCCESS `5` by default) under a new task id (and
 * `finishedStatus`, result `99`, under `finished`), and queue that task,
 * redelivered, with `embed`.
 *
 * @returns the task id
 */
async function redelivered(
  t: { broker: string; backend: string },
  queue: string,
  embed: { callbacks?: SignatureDict[]; chain?: SignatureDict[]; errbacks?: SignatureDict[] },
  finished?: string,
  status: keyof typeof STORED = "SUCCESS",
  finishedStatus: "SUCCESS" | "STARTED" = "SUCCESS",
): Promise<string> {
  const id = crypto.randomUUID();
  const backend = await openBackend(t.backend);
  const broker = await openBroker(t.broker);
  try {
    const results: [string, string, unknown][] = [[id, status, STORED[status]]];
    if (finished) results.push([finished, finishedStatus, 99]);
    await backend.store(results.map(([taskId, state, result]) => ({
      taskId,
      status: state as "SUCCESS",
      meta: encodeResultMeta({ taskId, status: state as "SUCCESS", result }),
    })));
    const message = addMessage(id, { embed });
    await broker.declareQueue(queue);
    await broker.publish(message, { exchange: "", routingKey: queue });
    const [d] = await broker.take([queue], { max: 1, signal: AbortSignal.timeout(10_000) });
    assert.equal(d.headers.id, id);
    await broker.reject([{ delivery: d, reason: "test", taskId: id, taskName: "t.add" }]);
    assert.equal(await broker.requeueParked(), 1);
    return id;
  } finally {
    await broker.close();
    await backend.close();
  }
}

/**
 * Store `status` (FAILURE or REVOKED) for a late-ack task whose chain's
 * next step is a chord member (the chord's other member already joined),
 * redeliver it, and check a worker joins that member as failed, so the chord
 * body fails with ChordError naming the stored exception, and runs nothing.
 *
 * FAILURE: as a late-ack task killed after storing its FAILURE (and its
 * chain's), before its chain's last step joined the chord; Celery 5.2.6 runs
 * the task again and fails the chord with ChordError. REVOKED: as one revoked
 * (its REVOKED stored, and its chain's) and its worker killed before that
 * step joined. Before, the redelivery joined nothing and the chord waited for
 * good.
 */
async function joinsChordMemberAsFailed(
  t: (typeof all)[number],
  status: "FAILURE" | "REVOKED",
): Promise<void> {
  const queue = `rq-${crypto.randomUUID().slice(0, 8)}`;
  const [group, step, bodyId] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const backend = await openBackend(t.backend);
  try {
    await backend.setChordSize!(group, 2);
    const other = { groupId: group, groupIndex: 0, taskId: crypto.randomUUID() };
    await backend.chordPartReturn!({ ...other, state: "SUCCESS", resultJson: "2" });
  } finally {
    await backend.close();
  }
  const member = taskSig("t.add", step, 10);
  const body = taskSig("t.positional", bodyId);
  member.options = { ...member.options, group_id: group, group_index: 1, chord: body };
  await redelivered(t, queue, { chain: [member] }, undefined, status);
  const { exc_type, exc_message } = STORED[status];
  await withWorker(t, {}, async (client, worker) => {
    const err = await taskFailure(client.asyncResult(bodyId).get({ timeout: 10_000 }));
    assert.equal(err.excType, "ChordError");
    assert.equal(err.excMessage[0], `Dependency ${step} raised ${exc_type}('${exc_message[0]}')`);
    const meta = await (await client.resultBackend()).get(step);
    assert.equal(meta?.status, "FAILURE");
    assert.equal((meta?.result as { exc_type: string }).exc_type, exc_type);
    assert.equal(worker.stats.succeeded + worker.stats.failed, 0, "nothing ran");
  }, queue);
}

for (const t of all) {
  Deno.test({
    name: `redelivered follow-ups on ${t.name}: a suppressed duplicate whose SUCCESS is stored ` +
      "sends its callback and next chain step again",
    ignore: t.ignore,
  }, async () => {
    const queue = `rq-${crypto.randomUUID().slice(0, 8)}`;
    const [cb, step] = [crypto.randomUUID(), crypto.randomUUID()];
    await redelivered(t, queue, { callbacks: [add(cb, 1)], chain: [add(step, 10)] });
    await withWorker(t, {}, async (client, worker) => {
      assert.equal(await client.asyncResult(cb).get({ timeout: 10_000 }), 6);
      assert.equal(await client.asyncResult(step).get({ timeout: 10_000 }), 15);
      // Run: the callback and the step; the redelivery was not run again.
      assert.equal(worker.stats.succeeded, 2);
    }, queue);
  });

  Deno.test({
    name: `redelivered follow-ups on ${t.name}: one whose result is stored as finished is not ` +
      "sent again",
    ignore: t.ignore,
  }, async () => {
    const queue = `rq-${crypto.randomUUID().slice(0, 8)}`;
    const [cb, step] = [crypto.randomUUID(), crypto.randomUUID()];
    await redelivered(t, queue, { callbacks: [add(cb, 1)], chain: [add(step, 10)] }, step);
    await withWorker(t, {}, async (client, worker) => {
      assert.equal(await client.asyncResult(cb).get({ timeout: 10_000 }), 6);
      // A task queued after them: the step, had it been sent, was taken before it.
      assert.equal(await (await client.sendTask("t.add", [2, 3])).get({ timeout: 10_000 }), 5);
      assert.equal(await client.asyncResult(step).get({ timeout: 10_000 }), 99);
      assert.equal(worker.stats.succeeded, 2);
    }, queue);
  });

  Deno.test({
    name: `redelivered follow-ups on ${t.name}: one with any state stored (STARTED: sent, ` +
      "running) is not sent again",
    ignore: t.ignore,
  }, async () => {
    const queue = `rq-${crypto.randomUUID().slice(0, 8)}`;
    const [cb, step] = [crypto.randomUUID(), crypto.randomUUID()];
    await redelivered(
      t,
      queue,
      { callbacks: [add(cb, 1)], chain: [add(step, 10)] },
      step,
      "SUCCESS",
      "STARTED",
    );
    await withWorker(t, {}, async (client, worker) => {
      assert.equal(await client.asyncResult(cb).get({ timeout: 10_000 }), 6);
      // A task queued after them: the step, had it been sent, was taken before it.
      assert.equal(await (await client.sendTask("t.add", [2, 3])).get({ timeout: 10_000 }), 5);
      const backend = await client.resultBackend();
      assert.equal((await backend.get(step))?.status, "STARTED");
      assert.equal(worker.stats.succeeded, 2);
    }, queue);
  });

  Deno.test({
    name: `redelivered follow-ups on ${t.name}: a suppressed duplicate whose FAILURE is stored ` +
      "sends its errbacks again, not an old-style one, nor one whose result is stored as finished",
    ignore: t.ignore,
  }, async () => {
    const queue = `rq-${crypto.randomUUID().slice(0, 8)}`;
    const [eb, done, oldStyle] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    const errbacks = [
      taskSig("t.positional", eb),
      taskSig("t.positional", done),
      // Two parameters: called in-process after a run, never sent.
      taskSig("t.add", oldStyle),
    ];
    const id = await redelivered(t, queue, { errbacks }, done, "FAILURE");
    await withWorker(t, {}, async (client, worker) => {
      // Sent again with the failed task's id, as after the run.
      assert.equal(await client.asyncResult(eb).get({ timeout: 10_000 }), id);
      // A task queued after them: the others, had they been sent, were taken before it.
      assert.equal(await (await client.sendTask("t.add", [2, 3])).get({ timeout: 10_000 }), 5);
      assert.equal(await client.asyncResult(done).get({ timeout: 10_000 }), 99);
      assert.equal(await client.asyncResult(oldStyle).state(), "PENDING");
      assert.equal(worker.stats.succeeded, 2);
      assert.equal(worker.stats.failed, 0);
    }, queue);
  });

  Deno.test({
    name: `redelivered follow-ups on ${t.name}: a suppressed duplicate whose FAILURE is stored ` +
      "joins the chord member later in its chain as failed, so the chord fails",
    ignore: t.ignore,
  }, () => joinsChordMemberAsFailed(t, "FAILURE"));
}

const redis = all.find((t) => t.name === "redis")!;
Deno.test({
  name: "redelivered follow-ups on redis: a suppressed duplicate whose REVOKED is stored joins " +
    "the chord member later in its chain as failed, so the chord fails",
  ignore: redis.ignore,
}, () => joinsChordMemberAsFailed(redis, "REVOKED"));

Deno.test("redelivered follow-ups: clean up", async () => {
  await cleanup();
});
