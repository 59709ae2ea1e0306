/**
 * The broker conformance suite: the same contract checked against every
 * transport. A transport's test file calls {@link brokerConformance} with a
 * factory that opens a fresh broker on an isolated namespace.
 */

import assert from "node:assert/strict";
import type { Broker, Delivery } from "../src/broker/port.ts";
import type { Message } from "../src/protocol/message.ts";

/** Opens a broker; all brokers opened by one factory share one namespace. */
export type BrokerFactory = (options?: { visibilityTimeout?: number }) => Promise<Broker>;

let counter = 0;

/** A queue name unique to this run. */
export function uniqueQueue(label: string): string {
  return `conf-${label}-${crypto.randomUUID().slice(0, 8)}-${counter++}`;
}

/** A small message whose body says `text`. */
export function message(text: string, extra: Partial<Message> = {}): Message {
  return {
    body: new TextEncoder().encode(JSON.stringify(text)),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { task: "conf.task", id: crypto.randomUUID(), ...(extra.headers ?? {}) },
    properties: { delivery_mode: 2, priority: 0, ...(extra.properties ?? {}) },
  };
}

function textOf(d: Delivery): string {
  return JSON.parse(new TextDecoder().decode(d.body));
}

async function takeAll(broker: Broker, queues: string[], n: number): Promise<Delivery[]> {
  const out: Delivery[] = [];
  while (out.length < n) {
    out.push(
      ...await broker.take(queues, { max: n - out.length, signal: AbortSignal.timeout(5000) }),
    );
    if (out.length === 0) throw new Error("take timed out");
  }
  return out;
}

/**
 * Register the conformance tests for one transport.
 *
 * @param name transport label in test names
 * @param open opens a broker on an isolated namespace
 * @param ignore skip the suite (its transport is not available here)
 */
export function brokerConformance(name: string, open: BrokerFactory, ignore = false): void {
  const t = (title: string, fn: (b: Broker) => Promise<void>) =>
    Deno.test({ name: `${name} broker: ${title}`, ignore }, async () => {
      const broker = await open();
      try {
        await fn(broker);
      } finally {
        await broker.close();
      }
    });

  t("a published message is taken back intact", async (b) => {
    const q = uniqueQueue("intact");
    const sent = message("hello", {
      headers: { x: [1, "two", null] },
      properties: { reply_to: "r1" },
    });
    sent.body = new Uint8Array([0, 1, 2, 250, 255]);
    sent.contentType = "application/x-msgpack";
    sent.contentEncoding = "binary";
    await b.publish(sent, { routingKey: q });
    const [d] = await takeAll(b, [q], 1);
    assert.deepEqual([...d.body], [0, 1, 2, 250, 255]);
    assert.equal(d.contentType, "application/x-msgpack");
    assert.equal(d.contentEncoding, "binary");
    assert.deepEqual(d.headers.x, [1, "two", null]);
    assert.equal(d.headers.id, sent.headers.id);
    assert.equal(d.properties.reply_to, "r1");
    assert.equal(d.queue, q);
    assert.equal(d.routingKey, q);
    assert.equal(d.redelivered, false);
    assert.ok(d.deliveryTag.length > 0);
    await b.ack([d]);
    assert.equal(await b.queueDepth(q), 0);
  });

  t("messages come out in publish order and take honours max", async (b) => {
    const q = uniqueQueue("fifo");
    for (let i = 0; i < 10; i++) await b.publish(message(`m${i}`), { routingKey: q });
    assert.equal(await b.queueDepth(q), 10);
    const first = await b.take([q], { max: 3 });
    assert.deepEqual(first.map(textOf), ["m0", "m1", "m2"]);
    const rest = await takeAll(b, [q], 7);
    assert.deepEqual(rest.map(textOf), ["m3", "m4", "m5", "m6", "m7", "m8", "m9"]);
    await b.ack([...first, ...rest]);
  });

  t("take refuses no queue and a max below 1, before taking anything", async (b) => {
    const q = uniqueQueue("args");
    await b.publish(message("kept"), { routingKey: q });
    const noQueue = { name: "TypeError", message: "take() needs at least one queue" };
    await assert.rejects(b.take([], { max: 1, signal: AbortSignal.timeout(1000) }), noQueue);
    for (const max of [0, -1, 0.5, NaN]) {
      await assert.rejects(b.take([q], { max, signal: AbortSignal.timeout(1000) }), {
        name: "RangeError",
        message: /^take\(\) needs max/,
      });
    }
    assert.equal(await b.queueDepth(q), 1);
    const [d] = await takeAll(b, [q], 1);
    await b.ack([d]);
  });

  t("priorities order delivery (lower first; higher first on AMQP)", async (b) => {
    const q = uniqueQueue("prio");
    await b.publish(message("p9", { properties: { priority: 9 } }), { routingKey: q });
    await b.publish(message("p5", { properties: { priority: 5 } }), { routingKey: q });
    await b.publish(message("p0", { properties: { priority: 0 } }), { routingKey: q });
    const got = await takeAll(b, [q], 3);
    // As in Celery: kombu's Redis transport takes 0 first, RabbitMQ delivers 9 first.
    const expected = b.transport === "amqp" ? ["p9", "p5", "p0"] : ["p0", "p5", "p9"];
    assert.deepEqual(got.map(textOf), expected);
    await b.ack(got);
  });

  t("take from several queues returns messages of each", async (b) => {
    const q1 = uniqueQueue("multi-a");
    const q2 = uniqueQueue("multi-b");
    await b.publish(message("a"), { routingKey: q1 });
    await b.publish(message("b"), { routingKey: q2 });
    const got = await takeAll(b, [q1, q2], 2);
    assert.deepEqual(got.map((d) => [d.queue, textOf(d)]).sort(), [[q1, "a"], [q2, "b"]]);
    await b.ack(got);
  });

  t("take waits for a message published later", async (b) => {
    const q = uniqueQueue("wait");
    const other = await open();
    try {
      const pending = b.take([q], { max: 5, signal: AbortSignal.timeout(5000) });
      await new Promise((r) => setTimeout(r, 200));
      await other.publish(message("late"), { routingKey: q });
      const got = await pending;
      assert.deepEqual(got.map(textOf), ["late"]);
      await b.ack(got);
    } finally {
      await other.close();
    }
  });

  t("an aborted take resolves empty and loses nothing", async (b) => {
    const q = uniqueQueue("abort");
    const ctl = new AbortController();
    const pending = b.take([q], { max: 1, signal: ctl.signal });
    setTimeout(() => ctl.abort(), 100);
    assert.deepEqual(await pending, []);
    await b.publish(message("after"), { routingKey: q });
    const got = await takeAll(b, [q], 1);
    assert.equal(textOf(got[0]), "after");
    await b.ack(got);
  });

  t("requeue puts a delivery back in front, marked redelivered", async (b) => {
    const q = uniqueQueue("requeue");
    await b.publish(message("first"), { routingKey: q });
    await b.publish(message("second"), { routingKey: q });
    const [d] = await b.take([q], { max: 1 });
    assert.equal(textOf(d), "first");
    await b.requeue([d]);
    const again = await takeAll(b, [q], 2);
    assert.deepEqual(again.map(textOf), ["first", "second"]);
    assert.equal(again[0].redelivered, true);
    assert.equal(again[0].headers.id, d.headers.id);
    await b.ack(again);
  });

  t("requeue of several deliveries puts them back in front in the order given", async (b) => {
    const q = uniqueQueue("requeue-many");
    for (const text of ["a", "b", "c", "d"]) await b.publish(message(text), { routingKey: q });
    const taken = await takeAll(b, [q], 3);
    assert.deepEqual(taken.map(textOf), ["a", "b", "c"]);
    await b.requeue(taken);
    const again = await takeAll(b, [q], 4);
    assert.deepEqual(again.map(textOf), ["a", "b", "c", "d"]);
    assert.deepEqual(again.map((d) => d.redelivered), [true, true, true, false]);
    await b.ack(again);
  });

  t("a take waiting on the queue gets the first of several requeued deliveries", async (b) => {
    const q = uniqueQueue("requeue-waiting");
    for (const text of ["a", "b", "c"]) await b.publish(message(text), { routingKey: q });
    const taken = await takeAll(b, [q], 3);
    const other = await open();
    try {
      // Another consumer waits on the empty queue while the three go back.
      const waiting = other.take([q], { max: 1, signal: AbortSignal.timeout(5000) });
      await new Promise((r) => setTimeout(r, 300));
      await b.requeue(taken);
      const first = await waiting;
      assert.deepEqual(first.map(textOf), ["a"]);
      await other.ack(first);
    } finally {
      await other.close();
    }
    await b.ack(await takeAll(b, [q], 2));
  });

  t("reject parks the message where it can be listed and requeued, and says so", async (b) => {
    const q = uniqueQueue("park");
    const sent = message("bad");
    await b.publish(sent, { routingKey: q });
    const [d] = await takeAll(b, [q], 1);
    const before = (await b.listParked({ limit: 1000 })).length;
    const counted = await b.countParked();
    const rejection = {
      delivery: d,
      reason: "unregistered task conf.task",
      taskId: String(sent.headers.id),
      taskName: "conf.task",
    };
    assert.deepEqual(await b.reject([rejection]), [rejection], "resolves with what it parked");
    const parked = (await b.listParked({ limit: 1000 })).filter((p) =>
      p.taskId === sent.headers.id
    );
    assert.equal(parked.length, 1);
    assert.equal(parked[0].reason, "unregistered task conf.task");
    assert.equal(parked[0].queue, q);
    assert.equal(parked[0].taskName, "conf.task");
    assert.ok(parked[0].parkedAt instanceof Date);
    assert.equal((await b.listParked({ limit: 1000 })).length, before + 1);
    assert.equal(await b.countParked(), counted + 1, "countParked counts the new one");
    assert.equal(await b.queueDepth(q), 0);
    assert.ok(await b.requeueParked() >= 1);
    const [back] = await takeAll(b, [q], 1);
    assert.equal(back.headers.id, sent.headers.id);
    assert.equal(back.redelivered, true);
    await b.ack([back]);
  });

  t("a requeue beside a listing moves every parked message", async (b) => {
    // the dashboard polls the list while an operator clicks Requeue; on
    // RabbitMQ a listing holds what it read until it is done
    const q = uniqueQueue("park-busy");
    const sent = Array.from({ length: 20 }, (_, i) => message(`busy-${i}`));
    for (const m of sent) await b.publish(m, { routingKey: q });
    const taken = await takeAll(b, [q], sent.length);
    await b.reject(taken.map((delivery) => ({ delivery, reason: "refused" })));
    for (let round = 0; round < 3; round++) {
      const [, moved] = await Promise.all([
        b.listParked({ limit: 1000 }),
        new Promise((r) => setTimeout(r, round)).then(() => b.requeueParked({ limit: 1000 })),
      ]);
      assert.ok(moved >= sent.length, `round ${round}: ${moved} of ${sent.length} moved`);
      const back = await takeAll(b, [q], sent.length);
      assert.deepEqual(
        back.map((d) => d.headers.id).sort(),
        sent.map((m) => m.headers.id).sort(),
      );
      if (round < 2) await b.reject(back.map((delivery) => ({ delivery, reason: "refused" })));
      else await b.ack(back);
    }
  });

  t("a requeue moves each parked message once, while a worker parks them again", async (b) => {
    await b.requeueParked({ limit: 100_000 }); // what earlier tests left parked
    const q = uniqueQueue("park-again");
    const sent = Array.from({ length: 30 }, (_, i) => message(`again-${i}`));
    for (const m of sent) await b.publish(m, { routingKey: q });
    await b.reject((await takeAll(b, [q], sent.length)).map((delivery) => ({
      delivery,
      reason: "unregistered task conf.task",
    })));
    // a worker that still does not know the task: everything requeued is parked again at once
    const worker = await open();
    const stop = new AbortController();
    let refused = 0;
    const refusing = (async () => {
      while (!stop.signal.aborted) {
        const got = await worker.take([q], {
          max: 10,
          signal: AbortSignal.any([stop.signal, AbortSignal.timeout(100)]),
        });
        await worker.reject(got.map((delivery) => ({ delivery, reason: "unregistered again" })));
        refused += got.length;
      }
    })();
    try {
      assert.equal(await b.requeueParked({ limit: 1000 }), sent.length);
      const until = Date.now() + 10_000;
      while (refused < sent.length && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(refused, sent.length);
    } finally {
      stop.abort();
      await refusing;
      await worker.close();
    }
    const parked = await b.listParked({ limit: 1000 });
    assert.equal(parked.filter((p) => p.queue === q).length, sent.length);
    assert.equal(await b.requeueParked({ limit: 1000 }), sent.length);
    await b.ack(await takeAll(b, [q], sent.length));
  });

  t("a delivery rejected after it was acknowledged is parked all the same", async (b) => {
    const q = uniqueQueue("park-acked");
    const sent = message("late-bad");
    await b.publish(sent, { routingKey: q });
    const [d] = await takeAll(b, [q], 1);
    await b.ack([d]);
    await b.reject([{
      delivery: d,
      reason: "body does not decode",
      taskId: String(sent.headers.id),
    }]);
    const parked = (await b.listParked({ limit: 1000 })).filter((p) =>
      p.taskId === sent.headers.id
    );
    assert.equal(parked.length, 1);
    assert.equal(parked[0].reason, "body does not decode");
    assert.equal(await b.queueDepth(q), 0);
  });

  t("an unacknowledged delivery comes back after the visibility timeout", async (b) => {
    const q = uniqueQueue("visibility");
    await b.publish(message("orphan"), { routingKey: q });
    const dead = await open({ visibilityTimeout: 1 });
    const [d] = await dead.take([q], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.equal(textOf(d), "orphan");
    await dead.close(); // dies without acking
    // Without a visibility timeout (AMQP) the broker puts it back at once.
    if (dead.visibilityTimeout !== null) assert.equal(await b.queueDepth(q), 0);
    const rescuer = await open({ visibilityTimeout: 1 });
    try {
      const [again] = await rescuer.take([q], { max: 1, signal: AbortSignal.timeout(10_000) });
      assert.ok(again, "the orphaned message was not restored");
      assert.equal(textOf(again), "orphan");
      assert.equal(again.redelivered, true);
      await rescuer.ack([again]);
    } finally {
      await rescuer.close();
    }
  });

  t("a renewed lease keeps a live delivery from coming back", async (b) => {
    const q = uniqueQueue("lease");
    await b.publish(message("long task"), { routingKey: q });
    const holder = await open({ visibilityTimeout: 1 });
    const rescuer = await open({ visibilityTimeout: 1 });
    try {
      const [d] = await holder.take([q], { max: 1, signal: AbortSignal.timeout(5000) });
      if (holder.visibilityTimeout === null) {
        await holder.extend([d]); // nothing to renew: the broker holds it while we live
        await holder.ack([d]);
        return;
      }
      assert.equal(holder.visibilityTimeout, 1000);
      const renew = setInterval(() => holder.extend([d]), 250);
      try {
        const stolen = await rescuer.take([q], { max: 1, signal: AbortSignal.timeout(2500) });
        assert.deepEqual(
          stolen.map(textOf),
          [],
          "a renewed delivery was given to another consumer",
        );
      } finally {
        clearInterval(renew);
      }
      await holder.close(); // dies without acking: the lease runs out
      const [again] = await rescuer.take([q], { max: 1, signal: AbortSignal.timeout(10_000) });
      assert.equal(textOf(again), "long task");
      await rescuer.ack([again]);
    } finally {
      await holder.close();
      await rescuer.close();
    }
  });

  t("a broadcast reaches every current subscriber, and no later one", async (b) => {
    const exchange = uniqueQueue("fanout");
    const other = await open();
    const stop = new AbortController();
    try {
      const got: string[][] = [[], [], []];
      const arrived = Promise.withResolvers<void>();
      const sub = (i: number) => (m: Message) => {
        got[i].push(JSON.parse(new TextDecoder().decode(m.body)));
        if (got[0].length && got[1].length) arrived.resolve();
      };
      await b.subscribe(exchange, sub(0), { signal: stop.signal, queue: `${exchange}.a` });
      await other.subscribe(exchange, sub(1), { signal: stop.signal, queue: `${exchange}.b` });
      await b.broadcast(exchange, message("to all"));
      const timer = setTimeout(() => arrived.reject(new Error("broadcast not received")), 5000);
      await arrived.promise.finally(() => clearTimeout(timer));
      await other.subscribe(exchange, sub(2), { signal: stop.signal, queue: `${exchange}.c` });
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(got, [["to all"], ["to all"], []]);
    } finally {
      stop.abort();
      await other.close();
    }
  });

  t("revoked ids are remembered across connections until they expire", async (b) => {
    const keep = crypto.randomUUID();
    const brief = crypto.randomUUID();
    await b.addRevoked([
      { id: keep, expiresAt: new Date(Date.now() + 3_600_000) },
      { id: brief, expiresAt: new Date(Date.now() + 1500) },
    ]);
    const later = await open();
    try {
      const ids = (await later.listRevoked()).map((e) => e.id);
      assert.ok(ids.includes(keep) && ids.includes(brief), `missing from ${ids}`);
      await new Promise((r) => setTimeout(r, 2000));
      const after = await later.listRevoked();
      assert.ok(after.some((e) => e.id === keep));
      assert.ok(!after.some((e) => e.id === brief), "an expired revocation is still listed");
      const entry = after.find((e) => e.id === keep)!;
      assert.ok(Math.abs(entry.expiresAt.getTime() - (Date.now() + 3_598_000)) < 5000);
    } finally {
      await later.close();
    }
  });

  t("an acknowledged delivery never comes back", async (b) => {
    const q = uniqueQueue("acked");
    await b.publish(message("once"), { routingKey: q });
    const short = await open({ visibilityTimeout: 1 });
    try {
      const [d] = await short.take([q], { max: 1, signal: AbortSignal.timeout(5000) });
      await short.ack([d]);
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(await short.take([q], { max: 1, signal: AbortSignal.timeout(1500) }), []);
    } finally {
      await short.close();
    }
  });

  t("purge empties a queue and reports the count", async (b) => {
    const q = uniqueQueue("purge");
    for (let i = 0; i < 4; i++) {
      await b.publish(message(`x${i}`, { properties: { priority: i * 3 } }), { routingKey: q });
    }
    assert.equal(await b.queueDepth(q), 4);
    assert.equal(await b.purge(q), 4);
    assert.equal(await b.queueDepth(q), 0);
  });

  t("competing consumers take every message exactly once", async (b) => {
    const q = uniqueQueue("compete");
    const n = 200;
    await Promise.all(
      Array.from({ length: n }, (_, i) => b.publish(message(`c${i}`), { routingKey: q })),
    );
    const others = [await open(), await open()];
    try {
      const seen: string[] = [];
      await Promise.all([b, ...others].map(async (c) => {
        for (;;) {
          const got = await c.take([q], { max: 7, signal: AbortSignal.timeout(1000) });
          if (got.length === 0) return;
          seen.push(...got.map(textOf));
          await c.ack(got);
        }
      }));
      assert.equal(seen.length, n);
      assert.equal(new Set(seen).size, n);
    } finally {
      await Promise.all(others.map((o) => o.close()));
    }
  });
}
