/**
 * Copies in RabbitMQ's `celeriac.parked`: the two copies of a message
 * parked twice (what a loss mid-park leaves, see amqp_park_race_test.ts;
 * here two identical publishes, each taken and parked) are requeued once
 * however few a requeue moves at a time, and by two processes requeueing
 * at once (scans of the queue take turns through an exclusive lock queue
 * that a dead holder does not keep), and two messages that differ in a
 * header are two. The test's own vhost.
 */

import assert from "node:assert/strict";
import { type AmqpBroker, openAmqpBroker } from "../src/broker/amqp.ts";
import { PARKED_HEADER } from "../src/broker/amqp_message.ts";
import { parkId } from "../src/broker/amqp_park_id.ts";
import { SCAN_LOCK_QUEUE } from "../src/broker/amqp_scan_lock.ts";
import { ParkedScanBusyError } from "../src/broker/errors.ts";
import { encodeTaskMessage, type TaskMessageInput } from "../src/protocol/task_message.ts";
import { uniqueQueue } from "./broker_conformance.ts";
import { createVhost, type TestVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

/** A message of task `t.nope` with id `id`, `extra` set over the defaults. */
function taskMessage(id: string, extra: Partial<TaskMessageInput> = {}) {
  return encodeTaskMessage({
    task: "t.nope",
    id,
    args: [1],
    kwargs: {},
    now: new Date(0),
    origin: "x",
    replyTo: "",
    ...extra,
  });
}

/** Run `body` with a broker on a vhost of its own (named after `label`), then close and remove both. */
async function withBroker(
  label: string,
  body: (broker: AmqpBroker, vhost: TestVhost) => Promise<void>,
) {
  const vhost = await createVhost(label);
  const broker = await openAmqpBroker(vhost.url(), {});
  try {
    await body(broker, vhost);
  } finally {
    await broker.close();
    await vhost.remove();
  }
}

/** Publish two messages of one task id (`variant` sets what differs), take and park both, then `check`. */
async function parkTwo(
  label: string,
  variant: (i: number) => Partial<TaskMessageInput>,
  check: (broker: AmqpBroker, q: string, vhost: TestVhost) => Promise<void>,
): Promise<void> {
  await withBroker(label, async (broker, vhost) => {
    const id = `copies-${crypto.randomUUID()}`;
    const q = uniqueQueue(label);
    for (let i = 0; i < 2; i++) {
      await broker.publish(taskMessage(id, variant(i)), { routingKey: q });
    }
    const taken = await broker.take([q], { max: 2, signal: AbortSignal.timeout(10_000) });
    if (taken.length < 2) {
      taken.push(...await broker.take([q], { max: 1, signal: AbortSignal.timeout(10_000) }));
    }
    const parked = await broker.reject(
      taken.map((delivery) => ({ delivery, reason: "r", taskId: id })),
    );
    assert.equal(parked.length, 2, "both parked");
    await check(broker, q, vhost);
  });
}

/**
 * Take and acknowledge `expected` messages from `q` (waiting for each as long as it takes, not
 * taking a quiet second for an empty queue), then what the queue still has; how many in all.
 */
async function drain(broker: AmqpBroker, q: string, expected: number): Promise<number> {
  let n = 0;
  while (n < expected) {
    const got = await broker.take([q], { max: expected - n, signal: AbortSignal.timeout(30_000) });
    n += got.length;
    await broker.ack(got);
  }
  const extra = await broker.queueDepth(q) > 0
    ? await broker.take([q], { max: 10, signal: AbortSignal.timeout(30_000) })
    : [];
  await broker.ack(extra);
  return n + extra.length;
}

Deno.test({
  name: "amqp parked copies: two copies of one message requeued one at a time move once",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: each requeue read only `limit` messages, so the second met the second copy and moved it (2 !== 1).
  await parkTwo("copies-limit1", () => ({}), async (broker, q) => {
    assert.equal((await broker.listParked()).length, 1, "listed once");
    assert.equal(await broker.requeueParked({ limit: 1 }), 1, "the first requeue moves it");
    assert.equal(
      await broker.requeueParked({ limit: 1 }),
      0,
      "the second has nothing left to move",
    );
    assert.equal(await broker.countParked(), 0, "the second copy dropped");
    assert.equal(await drain(broker, q, 1), 1, "back in its queue once");
  });
});

Deno.test({
  name:
    "amqp parked copies: two messages of one task id that differ in their headers are listed and moved",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: the park id left out the headers, so one was listed and the requeue dropped the other (1 !== 2).
  await parkTwo(
    "copies-distinct",
    (i) => ({ retries: i, countdown: i * 3600 }),
    async (broker, q) => {
      assert.equal((await broker.listParked()).length, 2, "both listed");
      assert.equal(await broker.requeueParked(), 2, "both moved");
      assert.equal(await broker.countParked(), 0, "none left parked");
      assert.equal(await drain(broker, q, 2), 2, "both back in their queue");
    },
  );
});

Deno.test("amqp parked copies: a park id ignores what a redelivery changes and keeps every other header", async () => {
  const m = {
    body: new TextEncoder().encode("[[1], {}, {}]"),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { id: "t1", retries: 0, eta: null, sent: new Date(0), raw: new Uint8Array([1]) },
    properties: { correlation_id: "t1", priority: 0 },
  };
  const from = { taskId: "t1", queue: "celery", exchange: "", routingKey: "celery" };
  const id = await parkId(m, from);
  const redelivered = {
    ...m,
    headers: { "x-delivery-count": 1, ...m.headers, [PARKED_HEADER]: { id: "x" } },
  };
  assert.equal(
    await parkId(redelivered, from),
    id,
    "same message after a quorum queue's redelivery and a park",
  );
  for (
    const headers of [{ retries: 1 }, { eta: "2026-01-01T00:00:00" }, { root_id: "r" }, {
      raw: new Uint8Array([2]),
    }]
  ) {
    assert.notEqual(
      await parkId({ ...m, headers: { ...m.headers, ...headers } }, from),
      id,
      JSON.stringify(headers),
    );
  }
  assert.notEqual(
    await parkId({ ...m, properties: { ...m.properties, priority: 9 } }, from),
    id,
    "a property",
  );
  assert.notEqual(await parkId(m, { ...from, queue: "other" }), id, "another queue");
  assert.equal(await parkId(m, { ...from, taskId: null }), null, "none without a task id");
});

Deno.test({
  name:
    "amqp parked copies: a requeued message parked again is not a copy of the one it was moved from",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: both parks had one park id, so a requeue that moved the first and then met the second
  // (after a lost connection made it read again) dropped it as a duplicate: the task was nowhere.
  await withBroker("copies-again", async (broker) => {
    const id = `again-${crypto.randomUUID()}`;
    const q = uniqueQueue("copies-again");
    const m = taskMessage(id);
    const parkOnce = async (reason: string) => {
      const taken = await broker.take([q], { max: 1, signal: AbortSignal.timeout(10_000) });
      assert.equal(taken.length, 1);
      await broker.reject(taken.map((delivery) => ({ delivery, reason, taskId: id })));
      const [listed] = await broker.listParked();
      return listed.id;
    };
    await broker.publish(m, { routingKey: q });
    const first = await parkOnce("poison");
    assert.equal(await broker.requeueParked(), 1);
    const second = await parkOnce("poison again");
    assert.notEqual(second, first, "the second park is another message's");
  });
});

Deno.test({
  name:
    "amqp parked copies: a requeue of one reads ten more, not the whole queue; a copy further on stays parked and a later requeue drops it",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: a requeue read every parked message whatever its limit (seconds per requeue of one at
  // 20,000 parked, each held unacknowledged meanwhile), so it dropped the copy 16 places on (15 !== 16).
  await withBroker("copies-window", async (broker) => {
    const q = uniqueQueue("copies-window");
    const ids = ["twice", ...Array.from({ length: 15 }, (_, i) => `filler-${i}`), "twice"];
    for (const id of ids) await broker.publish(taskMessage(id), { routingKey: q });
    const taken = [];
    while (taken.length < ids.length) {
      taken.push(
        ...await broker.take([q], {
          max: ids.length - taken.length,
          signal: AbortSignal.timeout(10_000),
        }),
      );
    }
    await broker.reject(
      taken.map((delivery) => ({ delivery, reason: "r", taskId: String(delivery.headers.id) })),
    );
    assert.equal(await broker.countParked(), 17);
    assert.equal(await broker.requeueParked({ limit: 1 }), 1, "the first copy moved");
    assert.equal(await broker.countParked(), 16, "the copy past the window stays parked");
    const listed = await broker.listParked();
    assert.equal(listed.at(-1)?.taskId, "twice", "last in line");
    // Before: each requeue remembered only its own moves, so "requeue all" (the dashboard's next
    // click) moved that copy too and the task ran twice (16 !== 15).
    assert.equal(
      await broker.requeueParked({ limit: 1000 }),
      15,
      "the fillers moved, the copy not",
    );
    assert.equal(await broker.countParked(), 0, "the copy dropped");
  });
});

Deno.test({
  name:
    "amqp parked copies: two processes requeueing one each at once move a message parked twice once",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: RabbitMQ handed one copy to each broker's scan and both moved it ("moved 1+1", 2 !== 1).
  for (let round = 0; round < 3; round++) {
    await parkTwo("copies-two", () => ({}), async (broker, q, vhost) => {
      const other = await openAmqpBroker(vhost.url(), {});
      try {
        const moved = await Promise.all([
          broker.requeueParked({ limit: 1 }),
          other.requeueParked({ limit: 1 }),
        ]);
        assert.deepEqual(moved.toSorted(), [0, 1], `round ${round}: one moved it`);
      } finally {
        await other.close();
      }
      assert.equal(await broker.countParked(), 0, "the second copy dropped");
      assert.equal(await drain(broker, q, 1), 1, `round ${round}: back in its queue once`);
    });
  }
});

/** A process that holds the scan lock on `vhost` until it is killed, as a requeue under way does. */
async function lockHolder(vhost: TestVhost): Promise<Deno.ChildProcess> {
  const script = `import amqp from "amqplib";
const conn = await amqp.connect(${JSON.stringify(vhost.url())});
await (await conn.createChannel()).assertQueue(${
    JSON.stringify(SCAN_LOCK_QUEUE)
  }, { exclusive: true });
console.log("held");
await new Promise(() => setInterval(() => {}, 60_000));`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", new URL("../deno.json", import.meta.url).pathname, script],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("held")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the lock holder exited: ${out}`);
    out += value;
  }
  await reader.cancel();
  return child;
}

Deno.test({
  name:
    "amqp parked copies: a scan waits for another process's lock, fails clearly past parkedScanWait, and a killed holder's lock goes with it",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: nothing waited: the requeue moved the message beside the other process's scan.
  await parkTwo("copies-lock", () => ({}), async (broker, q, vhost) => {
    const holder = await lockHolder(vhost);
    let killed = false;
    try {
      const impatient = await openAmqpBroker(vhost.url(), { parkedScanWait: 0.2 });
      try {
        await assert.rejects(impatient.requeueParked(), (err) => {
          assert.ok(err instanceof ParkedScanBusyError, String(err));
          assert.equal(err.code, "PARKED_SCAN_BUSY");
          assert.match(err.message, /celeriac\.parked\.scan-lock/);
          return true;
        });
        await assert.rejects(impatient.listParked(), ParkedScanBusyError);
      } finally {
        await impatient.close();
      }
      // The default wait (30 s) outlasts the holder, killed as a crashed requeue would be.
      const requeue = broker.requeueParked();
      let settled = false;
      requeue.finally(() => settled = true).catch(() => {});
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(settled, false, "waiting for its turn");
      holder.kill("SIGKILL");
      killed = true;
      await holder.status;
      assert.equal(await requeue, 1, "moved once the holder's connection was gone");
    } finally {
      if (!killed) {
        holder.kill("SIGKILL");
        await holder.status;
      }
    }
    assert.equal(await drain(broker, q, 1), 1, "back in its queue once");
  });
});
