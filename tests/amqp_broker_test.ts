import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { Celery, ExchangeNotFoundError } from "../mod.ts";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { PARKED_QUEUE, REVOKED_STREAM } from "../src/broker/amqp_topology.ts";
import type { Message } from "../src/protocol/message.ts";
import { brokerConformance, message, uniqueQueue } from "./broker_conformance.ts";
import { PYTHON } from "./helpers/procs.ts";
import { createVhost, listExchanges, listQueues, rabbitmqctl } from "./helpers/rabbitmq.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("broker");
const url = vhost?.url("max_priority=10") ?? "";
const plainUrl = vhost?.url() ?? "";
const fixture = (path: string) =>
  JSON.parse(
    Deno.readTextFileSync(new URL(`./fixtures/celery-5.2/amqp/${path}`, import.meta.url)),
  );

brokerConformance("amqp", () => openAmqpBroker(url), WITHOUT_RABBITMQ);

const test = (name: string, fn: () => Promise<void>, ignore = WITHOUT_RABBITMQ) =>
  Deno.test({ name: `amqp broker: ${name}`, ignore }, fn);

type Declared = { method: string; args: Record<string, unknown> };

test("the task queue and exchange are declared exactly as Celery 5.2 declares them", async () => {
  const broker = await openAmqpBroker(plainUrl);
  try {
    await broker.declareQueue("celery");
  } finally {
    await broker.close();
  }
  const decl: Declared[] = fixture("publish/plain.json").declares_sent_by_producer;
  const ex = decl.find((d) => d.method === "exchange.declare")!.args;
  const qd = decl.find((d) => d.method === "queue.declare")!.args;
  const exchanges = await listExchanges(vhost!.name);
  const e = exchanges.find((x) => x.name === "celery")!;
  assert.deepEqual(
    { type: e.type, durable: e.durable, auto_delete: e.auto_delete, arguments: e.arguments },
    { type: ex.type, durable: ex.durable, auto_delete: ex.auto_delete, arguments: {} },
  );
  const q = (await listQueues(vhost!.name)).find((x) => x.name === "celery")!;
  assert.deepEqual(
    { durable: q.durable, auto_delete: q.auto_delete, exclusive: q.exclusive },
    { durable: qd.durable, auto_delete: qd.auto_delete, exclusive: qd.exclusive },
  );
  assert.deepEqual(q.arguments, {});
});

test("pidbox exchange and node queue match the worker's declarations (no PRECONDITION_FAILED)", async () => {
  const decl: (Declared & { role: string })[] = fixture("worker/declarations.json").declarations;
  const pidboxEx =
    decl.find((d) => d.method === "exchange.declare" && d.args.exchange === "celery.pidbox")!.args;
  const nodeQ =
    decl.find((d) =>
      d.method === "queue.declare" && d.args.queue === "celery@fixture-host.celery.pidbox"
    )!.args;
  const broker = await openAmqpBroker(plainUrl);
  const stop = new AbortController();
  const queue = `celeriac@${crypto.randomUUID().slice(0, 8)}.celery.pidbox`;
  try {
    await broker.subscribe("celery.pidbox", () => {}, { signal: stop.signal, queue });
    const e = (await listExchanges(vhost!.name)).find((x) => x.name === "celery.pidbox")!;
    assert.deepEqual(
      { type: e.type, durable: e.durable, auto_delete: e.auto_delete },
      { type: pidboxEx.type, durable: pidboxEx.durable, auto_delete: pidboxEx.auto_delete },
    );
    const q = (await listQueues(vhost!.name)).find((x) => x.name === queue)!;
    assert.deepEqual(
      { durable: q.durable, auto_delete: q.auto_delete, exclusive: q.exclusive },
      { durable: nodeQ.durable, auto_delete: nodeQ.auto_delete, exclusive: nodeQ.exclusive },
    );
    assert.deepEqual(q.arguments, nodeQ.arguments); // with their types: ["I", 300000]
    // A reply to Python's reply exchange declares it as kombu does, on the shared channel.
    await broker.publish(message("pong"), {
      exchange: "reply.celery.pidbox",
      routingKey: crypto.randomUUID(),
    });
    const reply = (await listExchanges(vhost!.name)).find((x) => x.name === "reply.celery.pidbox")!;
    assert.deepEqual([reply.type, reply.durable], ["direct", false]);
  } finally {
    stop.abort();
    await broker.close();
  }
});

test("publishing to an exchange that does not exist is refused, and the channel kept", async () => {
  // It was dropped with a log line: a sendTask / delay() resolved for a message that went nowhere.
  const broker = await openAmqpBroker(url);
  const app = new Celery({ broker: url, backend: null });
  try {
    await assert.rejects(
      broker.publish(message("lost"), { exchange: "no-such-exchange", routingKey: "x" }),
      (err: Error) =>
        err instanceof ExchangeNotFoundError &&
        /Exchange "no-such-exchange" does not/.test(err.message),
    );
    await assert.rejects(
      app.sendTask("t.add", [1, 2], { exchange: "no-such-exchange", routingKey: "x" }),
      ExchangeNotFoundError,
    );
    const q = uniqueQueue("after-missing");
    await broker.publish(message("kept"), { routingKey: q });
    assert.equal(await broker.queueDepth(q), 1);
    assert.equal(await broker.purge(q), 1);
  } finally {
    await app.close();
    await broker.close();
  }
});

test("depths and purges asked at once, some of missing queues, all answer", async () => {
  const broker = await openAmqpBroker(url);
  const q = uniqueQueue("depth-at-once");
  try {
    for (let i = 0; i < 3; i++) await broker.publish(message(`m${i}`), { routingKey: q });
    const missing = [uniqueQueue("missing-a"), uniqueQueue("missing-b")];
    const depths = await Promise.all(
      [missing[0], q, missing[1], q].map((n) => broker.queueDepth(n)),
    );
    assert.deepEqual(depths, [0, 3, 0, 3]);
    const purged = await Promise.all([missing[0], q, missing[1]].map((n) => broker.purge(n)));
    assert.deepEqual(purged, [0, 3, 0]);
    // the broker's own channels were not hurt: publishing still works
    await broker.publish(message("after"), { routingKey: q });
    assert.equal(await broker.queueDepth(q), 1);
  } finally {
    await broker.purge(q);
    await broker.close();
  }
});

test("a queue declared with other arguments is used as it is", async () => {
  const priority = await openAmqpBroker(url);
  const plain = await openAmqpBroker(plainUrl);
  try {
    const q = uniqueQueue("mismatch");
    await priority.declareQueue(q); // x-max-priority 10
    await plain.publish(message("still delivered"), { routingKey: q }); // would declare none
    const [d] = await plain.take([q], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.equal(JSON.parse(new TextDecoder().decode(d.body)), "still delivered");
    await plain.ack([d]);
  } finally {
    await priority.close();
    await plain.close();
  }
});

test("priority queues get x-max-priority from the URL, as task_queue_max_priority", async () => {
  const broker = await openAmqpBroker(url);
  try {
    const q = uniqueQueue("maxprio");
    await broker.declareQueue(q);
    const listed = (await listQueues(vhost!.name)).find((x) => x.name === q)!;
    assert.deepEqual(listed.arguments, { "x-max-priority": ["I", 10] });
  } finally {
    await broker.close();
  }
});

test(
  "headers keep py-amqp types: a Python client reads Celery's plain task headers back identically",
  async () => {
    const published = fixture("publish/plain.json").published[0];
    const limits = fixture("publish/time_limits.json").published[0];
    const broker = await openAmqpBroker(plainUrl);
    const q = uniqueQueue("py-types");
    try {
      for (const p of [published, limits]) {
        const m: Message = {
          body: new TextEncoder().encode(p.body_raw),
          contentType: p.properties.content_type,
          contentEncoding: p.properties.content_encoding,
          headers: p.headers,
          properties: p.properties,
        };
        await broker.publish(m, { routingKey: q });
      }
    } finally {
      await broker.close();
    }
    const script = `
import amqp, json, sys
def typed(v):
    if v is None: return ["V", None]
    if isinstance(v, bool): return ["t", v]
    if isinstance(v, int): return ["I" if -2**31 <= v < 2**31 else "L", v]
    if isinstance(v, float): return ["d", v]
    if isinstance(v, str): return ["S", v]
    if isinstance(v, list): return ["A", [typed(x) for x in v]]
    return ["?", repr(v)]
c = amqp.Connection(host="127.0.0.1:5672", userid="guest", password="guest", virtual_host=sys.argv[1])
c.connect()
ch = c.channel()
out = []
while True:
    m = ch.basic_get(sys.argv[2], no_ack=True)
    if m is None: break
    out.append({"headers": {k: typed(v) for k, v in m.headers.items()},
                "properties": {k: v for k, v in m.properties.items() if k != "application_headers"}})
print(json.dumps(out))
c.close()
`;
    const out = await new Deno.Command(PYTHON, { args: ["-c", script, vhost!.name, q] }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const seen = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(seen.length, 2);
    assert.deepEqual(seen[0].headers, published.headers_amqp_typed);
    assert.deepEqual(seen[1].headers, limits.headers_amqp_typed);
    assert.deepEqual(seen[0].properties, published.properties);
  },
  WITHOUT_RABBITMQ || WITHOUT_CELERY,
);

test("publish resolves only once RabbitMQ has the message (publisher confirms)", async () => {
  const broker = await openAmqpBroker(url);
  try {
    const q = uniqueQueue("confirm");
    const n = 300;
    await Promise.all(
      Array.from({ length: n }, (_, i) => broker.publish(message(`c${i}`), { routingKey: q })),
    );
    assert.equal(await broker.queueDepth(q), n);
    assert.equal(await broker.purge(q), n);
  } finally {
    await broker.close();
  }
});

test("take never leaves more unacknowledged messages with the consumer than asked for", async () => {
  const broker = await openAmqpBroker(url);
  const q = uniqueQueue("qos");
  try {
    for (let i = 0; i < 20; i++) await broker.publish(message(`q${i}`), { routingKey: q });
    const first = await broker.take([q], { max: 3 });
    assert.equal(first.length, 3);
    let listed = (await listQueues(vhost!.name)).find((x) => x.name === q)!;
    assert.deepEqual([listed.messages_ready, listed.messages_unacknowledged], [17, 3]);
    await broker.ack(first);
    // Waiting on an empty queue: consumers with prefetch = max, cancelled on arrival.
    const other = uniqueQueue("qos-wait");
    const waiting = broker.take([other], { max: 2, signal: AbortSignal.timeout(5000) });
    await new Promise((r) => setTimeout(r, 200));
    const publisher = await openAmqpBroker(url);
    try {
      await Promise.all(
        Array.from(
          { length: 6 },
          (_, i) => publisher.publish(message(`w${i}`), { routingKey: other }),
        ),
      );
    } finally {
      await publisher.close();
    }
    const woke = await waiting;
    assert.ok(woke.length >= 1 && woke.length <= 2, `took ${woke.length}`);
    await new Promise((r) => setTimeout(r, 300));
    listed = (await listQueues(vhost!.name)).find((x) => x.name === other)!;
    assert.equal(listed.messages_unacknowledged, woke.length);
    assert.equal(listed.messages_ready, 6 - woke.length);
    await broker.ack(woke);
    const rest = await broker.take([other], { max: 10 });
    assert.equal(rest.length, 6 - woke.length);
    await broker.ack(rest);
    await broker.purge(q);
  } finally {
    await broker.close();
  }
});

test("buffered deliveries go back to their queue soon after the last take", async () => {
  const broker = await openAmqpBroker(url);
  const q = uniqueQueue("linger");
  const depth = async () => {
    const listed = (await listQueues(vhost!.name)).find((x) => x.name === q)!;
    return [listed.messages_ready, listed.messages_unacknowledged];
  };
  try {
    for (let i = 0; i < 10; i++) await broker.publish(message(`l${i}`), { routingKey: q });
    const first = await broker.take([q], { max: 4 });
    assert.equal(first.length, 4);
    await broker.ack(first); // frees prefetch room: RabbitMQ sends up to 4 more to the buffer
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await depth(), [6, 0]);
    const rest = await broker.take([q], { max: 10 });
    assert.equal(rest.length, 6);
    assert.deepEqual(rest.map((d) => JSON.parse(new TextDecoder().decode(d.body))).sort(), [
      "l4",
      "l5",
      "l6",
      "l7",
      "l8",
      "l9",
    ]);
    // Acks out of order: singly, then a run of the oldest ones with `multiple`.
    await broker.ack(rest.slice(3));
    await broker.ack([rest[1]]);
    await broker.ack([rest[0], rest[2]]);
    await broker.publish(message("after"), { routingKey: q });
    const [after] = await broker.take([q], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.equal(JSON.parse(new TextDecoder().decode(after.body)), "after");
    await broker.ack([after]);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await depth(), [0, 0]);
  } finally {
    await broker.close();
  }
});

test("a take waiting on a queue that is deleted consumes it again once it is back", async () => {
  const broker = await openAmqpBroker(url);
  const other = await openAmqpBroker(url);
  const q = uniqueQueue("deleted");
  try {
    await broker.declareQueue(q);
    const waiting = broker.take([q], { max: 2, signal: AbortSignal.timeout(10_000) });
    await new Promise((r) => setTimeout(r, 200));
    // It said nothing above debug: a queue deleted under a fleet of workers went unnoticed.
    const records = await captureLogs("info");
    await rabbitmqctl("delete_queue", "-p", vhost!.name, q); // RabbitMQ cancels the consumer
    await new Promise((r) => setTimeout(r, 200));
    await other.publish(message("back"), { routingKey: q }); // declares the queue again
    const got = await waiting;
    assert.deepEqual(got.map((d) => JSON.parse(new TextDecoder().decode(d.body))), ["back"]);
    await broker.ack(got);
    assert.deepEqual(
      records.map(logLine).filter((l) => l.includes("cancelled the consumer")),
      [
        `warning RabbitMQ cancelled the consumer of queue ${q} (the queue was deleted?): ` +
        "declaring it again and consuming",
      ],
    );
  } finally {
    await reset();
    await broker.close();
    await other.close();
  }
});

test("a second ack of a delivery is not sent (RabbitMQ would close the channel)", async () => {
  const broker = await openAmqpBroker(url);
  const q = uniqueQueue("dead-ack");
  try {
    await broker.publish(message("again"), { routingKey: q });
    const [d] = await broker.take([q], { max: 1 });
    // A second ack of the same delivery must not reach RabbitMQ (it would close the channel).
    await broker.ack([d]);
    await broker.ack([d]);
    await broker.publish(message("next"), { routingKey: q });
    const [n] = await broker.take([q], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.equal(JSON.parse(new TextDecoder().decode(n.body)), "next");
    await broker.ack([n]);
  } finally {
    await broker.close();
  }
});

test("parked messages keep the original and a note, in the durable celeriac.parked queue", async () => {
  const broker = await openAmqpBroker(url);
  try {
    const q = uniqueQueue("park-wire");
    const sent = message("bad", { properties: { correlation_id: "c-1", priority: 3 } });
    await broker.publish(sent, { routingKey: q });
    const [d] = await broker.take([q], { max: 1 });
    await broker.reject([{ delivery: d, reason: "malformed", taskId: "t-1", taskName: "n" }]);
    const parkedQ = (await listQueues(vhost!.name)).find((x) => x.name === PARKED_QUEUE)!;
    assert.equal(parkedQ.durable, true);
    const listed = await broker.listParked({ limit: 1000 });
    const p = listed.find((x) => x.taskId === "t-1")!;
    assert.deepEqual([p.reason, p.queue, p.taskName], ["malformed", q, "n"]);
    assert.ok(Math.abs(p.parkedAt.getTime() - Date.now()) < 10_000);
    // Listing does not consume: a second listing sees the same messages, in order.
    const again = await broker.listParked({ limit: 1000 });
    assert.deepEqual(again.map((x) => x.id), listed.map((x) => x.id));
    assert.ok(await broker.requeueParked() >= 1);
    const [back] = await broker.take([q], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.equal(back.headers.id, sent.headers.id);
    assert.equal(back.properties.correlation_id, "c-1");
    assert.equal(back.redelivered, true);
    assert.equal(back.headers["x-celeriac-parked"], undefined);
    await broker.ack([back]);
  } finally {
    await broker.close();
  }
});

test("revoked ids live in a stream queue that survives the connection", async () => {
  const broker = await openAmqpBroker(url);
  try {
    const id = crypto.randomUUID();
    await broker.addRevoked([{ id, expiresAt: new Date(Date.now() + 60_000) }]);
    const stream = (await listQueues(vhost!.name)).find((x) => x.name === REVOKED_STREAM)!;
    assert.equal(stream.durable, true);
    assert.deepEqual(stream.arguments["x-queue-type"], ["S", "stream"]);
    // Two readers at once both see it (reading a stream consumes nothing).
    const readers = [await openAmqpBroker(url), await openAmqpBroker(url)];
    try {
      const lists = await Promise.all(readers.map((r) => r.listRevoked()));
      for (const l of lists) assert.ok(l.some((e) => e.id === id));
    } finally {
      await Promise.all(readers.map((r) => r.close()));
    }
  } finally {
    await broker.close();
  }
});

test("visibilityTimeout is null and extend does nothing", async () => {
  const broker = await openAmqpBroker(url);
  try {
    assert.equal(broker.visibilityTimeout, null);
    await broker.extend([]);
  } finally {
    await broker.close();
  }
});

test(
  "an unreachable server gives a BrokerConnectionError naming the URL, without the password",
  async () => {
    await assert.rejects(
      openAmqpBroker("amqp://guest:secret@127.0.0.1:1//"),
      (e: Error & { code?: string }) =>
        e.name === "BrokerConnectionError" && e.code === "BROKER_CONNECTION" &&
        e.message.includes("127.0.0.1:1") && !e.message.includes("secret"),
    );
  },
  false,
);

test("clean up the test vhost", async () => {
  await vhost!.remove();
});
