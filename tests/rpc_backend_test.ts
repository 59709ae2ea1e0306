import assert from "node:assert/strict";
import type { ResultBackend, StoreEntry } from "../src/backend/port.ts";
import { openRpcBackend, type RpcBackend } from "../src/backend/rpc.ts";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { Celery } from "../src/client/app.ts";
import { openBackend } from "../src/client/transports.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { Worker } from "../src/worker/worker.ts";
import { backendConformance } from "./backend_conformance.ts";
import { PYTHON } from "./helpers/procs.ts";
import { createVhost, listQueues } from "./helpers/rabbitmq.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("rpc");
const brokerUrl = vhost?.url() ?? "";
const fixture = (path: string) =>
  JSON.parse(
    Deno.readTextFileSync(new URL(`./fixtures/celery-5.2/amqp/${path}`, import.meta.url)),
  );

/**
 * rpc has no store: results travel to the reply queue named in each task
 * message. The suite's entries carry no `reply_to`, so the factory's
 * backends send every entry to one reply queue shared by the run, as if
 * every task had come from one client; the suite's reads then see what
 * reached that queue. Two differences from a stored backend hold on rpc and
 * are checked by the suite as it is: a backend that only stores never
 * consumes (so "stored later by another client" reaches the waiting one),
 * and `get` drains the queue before answering.
 */
const sharedQueue = crypto.randomUUID();

function sharedReplyQueue(backend: RpcBackend): ResultBackend {
  return {
    transport: backend.transport,
    store: (entries) => backend.store(entries.map((e) => ({ ...e, replyTo: sharedQueue }))),
    get: async (id) => {
      const meta = await backend.get(id);
      // Celery 5.2's rpc messages carry no date_done; the suite reads one.
      return meta && { ...meta, date_done: meta.date_done ?? new Date().toISOString() };
    },
    waitFor: (id, signal) => backend.waitFor(id, signal),
    forget: (id) => backend.forget(id),
    close: () => backend.close(),
  };
}

backendConformance(
  "rpc",
  async () =>
    sharedReplyQueue(await openRpcBackend("rpc://", { brokerUrl, replyQueue: sharedQueue })),
  WITHOUT_RABBITMQ,
);

const test = (name: string, fn: () => Promise<void>, ignore = WITHOUT_RABBITMQ) =>
  Deno.test({ name: `rpc backend: ${name}`, ignore }, fn);

test("results are sent as Celery 5.2 sends them: default exchange, reply_to queue, body and properties", async () => {
  const sent = fixture("worker/result_success.json").messages.find((
    m: { method: string; role: string; method_args: { exchange: string } },
  ) => m.role === "worker" && m.method === "basic.publish" && m.method_args.exchange === "");
  const declared =
    fixture("worker/result_success.json").methods.find((m: { method: string }) =>
      m.method === "queue.declare"
    ).args;
  const oid = crypto.randomUUID();
  const worker = await openRpcBackend("rpc://", { brokerUrl });
  const reader = await openAmqpBroker(brokerUrl);
  try {
    const taskId = sent.properties.correlation_id;
    const entry: StoreEntry = {
      taskId,
      status: "SUCCESS",
      meta: encodeResultMeta({ taskId, status: "SUCCESS", result: 5, dateDone: new Date() }),
      replyTo: oid,
    };
    await worker.store([entry]);
    const q = (await listQueues(vhost!.name)).find((x) => x.name === oid)!;
    assert.deepEqual(
      { durable: q.durable, auto_delete: q.auto_delete, exclusive: q.exclusive, args: q.arguments },
      {
        durable: declared.durable,
        auto_delete: declared.auto_delete,
        exclusive: declared.exclusive,
        args: declared.arguments,
      },
    );
    const [d] = await reader.take([oid], { max: 1, signal: AbortSignal.timeout(5000) });
    assert.equal(new TextDecoder().decode(d.body), sent.body_raw);
    const { content_type, content_encoding, ...properties } = sent.properties;
    assert.deepEqual(d.properties, properties);
    assert.deepEqual([d.contentType, d.contentEncoding], [content_type, content_encoding]);
    assert.deepEqual(d.headers, {});
    assert.equal(d.exchange, "");
    await reader.ack([d]);
  } finally {
    await worker.close();
    await reader.close();
  }
});

test("an entry without reply_to sends nothing", async () => {
  const backend = await openRpcBackend("rpc://", { brokerUrl });
  try {
    const taskId = crypto.randomUUID();
    await backend.store([{
      taskId,
      status: "SUCCESS",
      meta: encodeResultMeta({ taskId, status: "SUCCESS", result: 1 }),
    }]);
    assert.equal(await backend.get(taskId), null);
  } finally {
    await backend.close();
  }
});

test("every state change arrives; the latest is kept, waitFor resolves on the ready one and takes it", async () => {
  const client = await openRpcBackend("rpc://", { brokerUrl });
  const worker = await openRpcBackend("rpc://", { brokerUrl });
  try {
    const taskId = crypto.randomUUID();
    const waiting = client.waitFor(taskId, AbortSignal.timeout(5000));
    const entry = (status: "STARTED" | "SUCCESS", result: unknown): StoreEntry => ({
      taskId,
      status,
      meta: encodeResultMeta({ taskId, status, result }),
      replyTo: client.replyQueue,
    });
    await worker.store([entry("STARTED", { pid: 1, hostname: "w" })]);
    assert.equal((await client.get(taskId))?.status, "STARTED");
    await worker.store([entry("SUCCESS", 7)]);
    assert.equal((await waiting).result, 7);
    // Handed to the wait, as Celery hands it to the waiting AsyncResult: not kept here.
    assert.equal(await client.get(taskId), null);
    // Another client reads nothing: rpc results go to the sender only.
    const other = await openRpcBackend("rpc://", { brokerUrl });
    try {
      assert.equal(await other.get(taskId), null);
    } finally {
      await other.close();
    }
  } finally {
    await client.close();
    await worker.close();
  }
});

test("openBackend('rpc://') uses the broker URL and the app's reply queue", async () => {
  const backend = await openBackend("rpc://", { brokerUrl, replyQueue: "celeriac-test-oid" });
  try {
    assert.equal(backend.transport, "rpc");
    assert.equal((backend as RpcBackend).replyQueue, "celeriac-test-oid");
  } finally {
    await backend.close();
  }
  await assert.rejects(
    openBackend("rpc://", { brokerUrl: "redis://127.0.0.1:6379/0" }),
    /use an amqp:\/\/ broker/,
  );
});

test("a Celeriac worker on AMQP with an rpc backend answers a Celeriac client", async () => {
  const app = new Celery({
    broker: brokerUrl,
    backend: "rpc://",
    defaultQueue: `rpc-${crypto.randomUUID().slice(0, 8)}`,
  });
  app.task("tests.add", (a: number, b: number) => a + b);
  assert.match(String(app.config.backend), /^rpc:\/\/guest:guest@/);
  const worker = new Worker({ app, concurrency: 2, pool: "inline" });
  try {
    await worker.start();
    // The app's backend listens on its oid, the reply_to of its tasks, before the first send.
    const r = await app.sendTask<number>("tests.add", [2, 3]);
    assert.equal(await r.get({ timeout: 10_000 }), 5);
    assert.equal(await r.state(), "SUCCESS");
  } finally {
    await worker.stop();
    await app.close();
  }
});

test(
  "a Python Celery client with backend rpc:// gets the result from a Celeriac worker",
  async () => {
    const queue = `rpc-py-${crypto.randomUUID().slice(0, 8)}`;
    const app = new Celery({ broker: brokerUrl, backend: "rpc://", defaultQueue: queue });
    app.task("tests.add", (a: number, b: number) => a + b);
    const worker = new Worker({ app, concurrency: 2, pool: "inline" });
    await worker.start();
    try {
      const script = `
import sys
from celery import Celery
app = Celery(broker=sys.argv[1], backend="rpc://")
r = app.send_task("tests.add", args=(20, 22), queue=sys.argv[2])
print(r.get(timeout=10))
`;
      const pyUrl = brokerUrl.replace(/\/([^/?]+)$/, (_, v) => `/${decodeURIComponent(v)}`);
      const out = await new Deno.Command(PYTHON, { args: ["-c", script, pyUrl, queue] }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      assert.equal(new TextDecoder().decode(out.stdout).trim(), "42");
    } finally {
      await worker.stop();
      await app.close();
    }
  },
  WITHOUT_RABBITMQ || WITHOUT_CELERY,
);

/** Every message in `queue` (removed), with the task ids of their bodies. */
async function readAll(queue: string): Promise<string[]> {
  const reader = await openAmqpBroker(brokerUrl);
  const ids: string[] = [];
  try {
    for (;;) {
      const got = await reader.take([queue], { max: 100, signal: AbortSignal.timeout(1000) });
      if (got.length === 0) return ids;
      for (const d of got) ids.push(JSON.parse(new TextDecoder().decode(d.body)).task_id);
      await reader.ack(got);
    }
  } finally {
    await reader.close();
  }
}

const resultTo = (replyTo: string, taskId: string = crypto.randomUUID()): StoreEntry => ({
  taskId,
  status: "SUCCESS",
  meta: encodeResultMeta({ taskId, status: "SUCCESS", result: 1 }),
  replyTo,
});

test("a batch to several reply queues, some not declared yet: every result is confirmed in its queue, in order, when store resolves", async () => {
  const worker = await openRpcBackend("rpc://", { brokerUrl });
  const broker = await openAmqpBroker(brokerUrl);
  const [q1, q2] = [crypto.randomUUID(), crypto.randomUUID()];
  try {
    await worker.store([resultTo(q1, "first")]);
    const batches = [0, 1].map((b) =>
      Array.from({ length: 100 }, (_, i) => resultTo(i % 2 ? q2 : q1, `b${b}-${i}`))
    );
    for (const [b, batch] of batches.entries()) {
      await worker.store(batch); // the first batch declares q2, the second finds both declared
      assert.deepEqual(
        [await broker.queueDepth(q1), await broker.queueDepth(q2)],
        [1 + 50 * (b + 1), 50 * (b + 1)],
      );
    }
    const sent = batches.flat();
    assert.deepEqual(await readAll(q1), [
      "first",
      ...sent.filter((e) => e.replyTo === q1).map((e) => e.taskId),
    ]);
    assert.deepEqual(
      await readAll(q2),
      sent.filter((e) => e.replyTo === q2).map((e) => e.taskId),
    );
  } finally {
    await worker.close();
    await broker.close();
  }
});

test("a batch whose connection is cut before its confirms is sent again on the next connection: store resolves, none lost", async () => {
  const target = new URL(brokerUrl);
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 5672) });
  const viaProxy = `amqp://guest:guest@127.0.0.1:${proxy.port}${target.pathname}`;
  const worker = await openRpcBackend("rpc://", {
    brokerUrl: viaProxy,
    backoff: { initialMs: 50, maxMs: 500 },
    publishTimeout: 20,
  });
  const q = crypto.randomUUID();
  try {
    await worker.store([resultTo(q, "first")]);
    const batch = Array.from({ length: 500 }, (_, i) => resultTo(q, `r${i}`));
    const storing = worker.store(batch);
    await proxy.cut();
    await storing;
    assert.ok(proxy.accepted >= 2, "the backend reconnected");
    const got = new Set(await readAll(q));
    for (const e of batch) assert.ok(got.has(e.taskId), `${e.taskId} was lost`);
  } finally {
    await worker.close();
    await proxy.close();
  }
});

test("a bare rpc:// takes ?publish_timeout= from the broker URL: a store with RabbitMQ gone gives up after it (it waited the default 30 s)", async () => {
  const target = new URL(brokerUrl);
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 5672) });
  const viaProxy = `amqp://guest:guest@127.0.0.1:${proxy.port}${target.pathname}`;
  const app = new Celery({ broker: `${viaProxy}?publish_timeout=0.5`, backend: "rpc://" });
  const q = crypto.randomUUID();
  let closed = false;
  try {
    const backend = await app.resultBackend();
    await backend.store([resultTo(q, "first")]);
    await proxy.close();
    closed = true;
    const started = Date.now();
    await assert.rejects(backend.store([resultTo(q, "second")]));
    const waited = Date.now() - started;
    assert.ok(waited < 5000, `store gave up after ${waited} ms, not after publish_timeout 0.5 s`);
  } finally {
    await app.close();
    if (!closed) await proxy.close();
  }
});

test("clean up the test vhost", async () => {
  await vhost!.remove();
});
