/**
 * RabbitMQ quorum queues and native delayed delivery, on a vhost of this
 * file's own on the shared server: per-consumer prefetch (quorum queues
 * refuse channel-wide prefetch), a repeatable refusal backing off instead
 * of reconnecting in a tight loop, Celery 5.5's quorum declarations, the
 * type of an existing queue detected, `x-delivery-limit` parking poison
 * messages, and Celery 5.5's delayed-delivery topology carrying ETA tasks.
 */

import assert from "node:assert/strict";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { AmqpConnection } from "../src/broker/amqp_connection.ts";
import { delayedRoutingKey, delayLevels } from "../src/broker/amqp_delayed.ts";
import { refusalDelay } from "../src/broker/amqp_state.ts";
import { parseInequivalentArg } from "../src/broker/amqp_topology.ts";
import { pyIsoFormat } from "../src/protocol/time.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { interopWorker, pythonCalls } from "./helpers/interop.ts";
import { PYTHON } from "./helpers/procs.ts";
import { createVhost, listQueues, rabbitmqctl } from "./helpers/rabbitmq.ts";
import { deleteResults, REDIS_URL } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("quorum");
/** The vhost name has no characters to escape, so Python and Celeriac read it alike. */
const base = `amqp://guest:guest@127.0.0.1:5672/${vhost?.name}`;

const test = (name: string, fn: () => Promise<void>, ignore = WITHOUT_RABBITMQ) =>
  Deno.test({ name: `amqp quorum: ${name}`, ignore }, fn);

Deno.test("amqp quorum: delay routing keys are 28 binary digits, as kombu's calculate_routing_key", () => {
  // kombu: '.'.join(list(f'{countdown:028b}')) + f'.{routing_key}'
  assert.equal(delayedRoutingKey(5, "celery"), `${"0.".repeat(25)}1.0.1.celery`);
  assert.equal(delayedRoutingKey(2 ** 27, "q"), `1.${"0.".repeat(27)}q`);
  assert.equal(delayedRoutingKey(3.9, "q"), `${"0.".repeat(26)}1.1.q`);
  assert.throws(() => delayedRoutingKey(0.5, "q"), RangeError);
  assert.throws(() => delayedRoutingKey(2 ** 28, "q"), RangeError);
  const levels = delayLevels("quorum");
  assert.equal(levels.length, 28);
  assert.deepEqual(levels[0].queue.arguments, {
    "x-queue-type": "quorum",
    "x-overflow": "reject-publish",
    "x-message-ttl": 2 ** 27 * 1000,
    "x-dead-letter-exchange": "celery_delayed_26",
    "x-dead-letter-strategy": "at-least-once",
  });
  assert.equal(levels[0].waitKey, "1.#");
  assert.equal(levels[27].waitKey, `${"*.".repeat(27)}1.#`);
  assert.equal(levels[27].next, "celery_delayed_delivery");
  assert.equal(delayLevels("classic")[5].queue.arguments["x-dead-letter-strategy"], undefined);
});

Deno.test("amqp quorum: repeated quick refusals back off to 30 s; the first uses the quick backoff", () => {
  assert.equal(refusalDelay(0, () => 0), 0);
  assert.equal(refusalDelay(1, () => 0), 0);
  assert.deepEqual([2, 3, 4, 5, 6].map((n) => refusalDelay(n, () => 0)), [
    500,
    1000,
    2000,
    4000,
    8000,
  ]);
  assert.equal(refusalDelay(40, () => 0), 30_000);
  assert.equal(refusalDelay(2, () => 0.999), 600);
});

Deno.test("amqp quorum: RabbitMQ's PRECONDITION_FAILED answers name the existing type", () => {
  const amqplibText = (m: string) =>
    `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - ${m}"`;
  assert.deepEqual(
    parseInequivalentArg(amqplibText(
      "inequivalent arg 'x-queue-type' for queue 'qq' in vhost 'v': received none but current is the value 'quorum' of type 'longstr'",
    )),
    { of: "queue", arg: "x-queue-type", current: "quorum" },
  );
  assert.deepEqual(
    parseInequivalentArg(amqplibText(
      "inequivalent arg 'x-queue-type' for queue 'cq' in vhost 'v': received the value 'quorum' of type 'longstr' but current is none",
    )),
    { of: "queue", arg: "x-queue-type", current: "none" },
  );
  assert.deepEqual(
    parseInequivalentArg(amqplibText(
      "inequivalent arg 'type' for exchange 'tx' in vhost 'v': received 'direct' but current is 'topic'",
    )),
    { of: "exchange", arg: "type", current: "topic" },
  );
  assert.equal(parseInequivalentArg("NOT_FOUND - no queue 'x'"), null);
});

Deno.test("amqp quorum: max_priority with queue_type=quorum is refused (it would never apply)", async () => {
  const refused =
    /max_priority=10 cannot apply with queue_type=quorum: RabbitMQ quorum queues take no x-max-priority/;
  await assert.rejects(
    openAmqpBroker("amqp://guest:guest@127.0.0.1:1/?queue_type=quorum&max_priority=10"),
    refused,
  );
  await assert.rejects(
    openAmqpBroker("amqp://guest:guest@127.0.0.1:1/", { queueType: "quorum", maxPriority: 10 }),
    refused,
  );
});

test("a repeatable refusal right after connecting backs off instead of reconnecting ~8 times a second", async () => {
  // The old intake's mistake, made on purpose: channel-wide prefetch on a
  // quorum queue. RabbitMQ answers 540 NOT_IMPLEMENTED and closes the
  // connection every time.
  const queue = uniqueQueue("refusal");
  const setup = await openAmqpBroker(`${base}?queue_type=quorum`);
  await setup.declareQueue(queue);
  await setup.close();
  const conn = new AmqpConnection(base, { name: "celeriac-refusal-test" });
  await conn.start();
  let sessions = 0;
  const until = Date.now() + 3000;
  try {
    while (Date.now() < until) {
      let session;
      try {
        session = await conn.session({ timeoutMs: Math.max(1, until - Date.now()) });
      } catch {
        break;
      }
      sessions++;
      const ch = await session.model.createChannel().catch(() => null);
      if (!ch) continue;
      ch.on("error", () => {});
      await ch.prefetch(1, true).catch(() => {});
      await ch.consume(queue, () => {}).catch(() => {});
      await new Promise<void>((resolve) => {
        if (session.lost.aborted) resolve();
        session.lost.addEventListener("abort", () => resolve(), { once: true });
        setTimeout(resolve, Math.max(1, until - Date.now()));
      });
    }
  } finally {
    await conn.close();
  }
  // Quick backoff once, then 500, 1000, 2000 ms (+ up to 20 % jitter): at
  // most 5 connections in 3 s; reconnecting at once each time made about
  // 25, and the ordinary backoff alone (capped at 250 ms) about 12.
  assert.ok(sessions >= 2 && sessions <= 5, `${sessions} connections in 3 s`);
});

test("queue_type=quorum declares task queues as Celery 5.5 does, consumed with per-consumer prefetch", async () => {
  const broker = await openAmqpBroker(`${base}?queue_type=quorum`);
  const q = uniqueQueue("qq");
  try {
    for (let i = 0; i < 20; i++) await broker.publish(message(`m${i}`), { routingKey: q });
    const listed = (await listQueues(vhost!.name)).find((x) => x.name === q)!;
    assert.deepEqual(listed.arguments, { "x-queue-type": ["S", "quorum"] });
    assert.equal(listed.durable, true);
    const first = await broker.take([q], { max: 3 });
    assert.equal(first.length, 3);
    assert.equal(broker.connectionState, "open");
    // RabbitMQ refreshes a quorum queue's counters every few seconds: read
    // them until they show this take (or give up after 10 s and compare).
    let counts: unknown[] = [];
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      const now = (await listQueues(vhost!.name)).find((x) => x.name === q)!;
      counts = [now.messages_ready, now.messages_unacknowledged];
      if (counts[0] === 17 && counts[1] === 3) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(counts, [17, 3]);
    await broker.ack(first);
    let got = 3;
    while (got < 20) {
      const more = await broker.take([q], { max: 8, signal: AbortSignal.timeout(5000) });
      assert.ok(more.length > 0 && more.length <= 8);
      got += more.length;
      await broker.ack(more);
    }
    assert.equal(got, 20);
  } finally {
    await broker.close();
  }
});

test(
  "a Celeriac worker started with defaults consumes a quorum queue a Python client declared",
  async () => {
    const queue = `q-pyquorum-${crypto.randomUUID().slice(0, 8)}`;
    // Python (kombu) declares the queue as a quorum queue before any Celeriac process runs.
    const declare = await new Deno.Command(PYTHON, {
      args: [
        "-c",
        "import sys; from kombu import Connection, Exchange, Queue\n" +
        "with Connection(sys.argv[1]) as c:\n" +
        "    Queue(sys.argv[2], Exchange(sys.argv[2]), routing_key=sys.argv[2],\n" +
        "          queue_arguments={'x-queue-type': 'quorum'})(c.channel()).declare()",
        base,
        queue,
      ],
      stderr: "piped",
    }).output();
    assert.ok(declare.success, new TextDecoder().decode(declare.stderr));
    const worker = await interopWorker({ broker: base, backend: REDIS_URL }, queue);
    let ids: string[] = [];
    try {
      const out = await pythonCalls({
        CELERY_BROKER_URL: base,
        CELERY_RESULT_BACKEND: REDIS_URL,
        INTEROP_QUEUE: queue,
        INTEROP_QUEUE_TYPE: "quorum",
        INTEROP_MARKER_REDIS: REDIS_URL,
      }, [{ task: "tasks.add", args: [2, 3] }, { task: "tasks.add", args: [4, 5] }]);
      ids = out.map((o) => o.id);
      assert.deepEqual(out.map((o) => o.ok), [5, 9]);
      const listed = (await listQueues(vhost!.name)).find((x) => x.name === queue)!;
      assert.deepEqual(listed.arguments, { "x-queue-type": ["S", "quorum"] });
    } finally {
      await worker.stop();
      await deleteResults(ids);
    }
    assert.doesNotMatch(worker.output, /NOT_IMPLEMENTED|global qos|Lost the connection/);
  },
  WITHOUT_RABBITMQ || WITHOUT_CELERY,
);

// A quorum queue of RabbitMQ 3.10 returns requeued messages behind those waiting (classic
// queues put them back at their original place): their order among themselves is all it keeps.
test("a requeue of several deliveries keeps their order (behind what waits)", async () => {
  const broker = await openAmqpBroker(`${base}?queue_type=quorum`);
  const q = uniqueQueue("requeue-many");
  const text = (d: { body: Uint8Array }) => JSON.parse(new TextDecoder().decode(d.body));
  try {
    for (const t of ["a", "b", "c", "d"]) await broker.publish(message(t), { routingKey: q });
    const taken = [];
    while (taken.length < 3) {
      taken.push(
        ...await broker.take([q], { max: 3 - taken.length, signal: AbortSignal.timeout(5000) }),
      );
    }
    assert.deepEqual(taken.map(text), ["a", "b", "c"]);
    await broker.requeue(taken);
    const again = [];
    while (again.length < 4) {
      again.push(
        ...await broker.take([q], { max: 4 - again.length, signal: AbortSignal.timeout(5000) }),
      );
    }
    assert.deepEqual(again.map(text).filter((t) => t !== "d"), ["a", "b", "c"]);
    await broker.ack(again);
  } finally {
    await broker.close();
  }
});

test("x-delivery-limit: a message returned too often is parked, not delivered forever", async () => {
  const broker = await openAmqpBroker(`${base}?queue_type=quorum&delivery_limit=2`);
  const q = uniqueQueue("poison");
  try {
    const poison = message("poison");
    const sentAt = Date.now();
    await broker.publish(poison, { routingKey: q });
    let deliveries = 0;
    for (let i = 0; i < 5; i++) {
      const got = await broker.take([q], { max: 1, signal: AbortSignal.timeout(1500) });
      if (got.length === 0) break;
      deliveries++;
      await broker.requeue(got);
    }
    assert.equal(deliveries, 3, "the first delivery and two returns");
    const parked = (await broker.listParked()).filter((p) => p.queue === q);
    assert.equal(parked.length, 1);
    assert.match(parked[0].reason, /x-delivery-limit/);
    assert.equal(parked[0].taskId, poison.headers.id);
    // x-death's time (whole seconds), not the epoch.
    assert.ok(parked[0].parkedAt.getTime() >= sentAt - 1000, parked[0].parkedAt.toISOString());
    assert.equal(await broker.requeueParked(), 1);
    const [back] = await broker.take([q], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.equal(back.headers.id, poison.headers.id);
    await broker.ack([back]);
  } finally {
    await broker.close();
  }
});

test("native delayed delivery: an ETA task waits in Celery 5.5's delay queues, then reaches its quorum queue", async () => {
  const publisher = await openAmqpBroker(`${base}?queue_type=quorum&exchange_type=topic`);
  const consumer = await openAmqpBroker(`${base}?queue_type=quorum&exchange_type=topic`);
  const q = uniqueQueue("delayed");
  try {
    await consumer.declareQueue(q);
    // 3 s = 0b11: 2 s in celery_delayed_1, then 1 s in celery_delayed_0 (two levels).
    const eta = new Date(Date.now() + 3500);
    const sent = message("later", { headers: { eta: pyIsoFormat(eta, "+00:00") } });
    const t0 = Date.now();
    await publisher.publish(sent, { routingKey: q });
    assert.equal(await publisher.queueDepth(q), 0);
    assert.equal(await publisher.queueDepth("celery_delayed_1"), 1);
    const queues = await listQueues(vhost!.name);
    assert.equal(queues.filter((x) => x.name.startsWith("celery_delayed_")).length, 28);
    assert.deepEqual(queues.find((x) => x.name === "celery_delayed_27")!.arguments, {
      "x-dead-letter-exchange": ["S", "celery_delayed_26"],
      "x-dead-letter-strategy": ["S", "at-least-once"],
      "x-message-ttl": ["l", 134217728000],
      "x-overflow": ["S", "reject-publish"],
      "x-queue-type": ["S", "quorum"],
    });
    const bindings = await rabbitmqctl(
      "list_bindings",
      "-p",
      vhost!.name,
      "source_name",
      "destination_name",
      "routing_key",
      "--formatter",
      "json",
    );
    const listed = JSON.parse(bindings) as Record<string, string>[];
    assert.ok(
      listed.some((b) =>
        b.source_name === "celery_delayed_delivery" && b.destination_name === q &&
        b.routing_key === `#.${q}`
      ),
    );
    const [d] = await consumer.take([q], { max: 1, signal: AbortSignal.timeout(12_000) });
    const waited = Date.now() - t0;
    assert.ok(d, "the delayed message arrived");
    assert.equal(d.headers.id, sent.headers.id);
    assert.ok(waited >= 2500, `arrived after ${waited} ms, expected about 3 s`);
    await consumer.ack([d]);
  } finally {
    await publisher.close();
    await consumer.close();
  }
});

test("clean up the test vhost", async () => {
  await vhost!.remove();
});
