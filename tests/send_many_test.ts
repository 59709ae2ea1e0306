import assert from "node:assert/strict";
import { BatchSendError, Celery } from "../mod.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

const decoder = new TextDecoder();

/** Take what `queue` holds: [task id, task name, args] per message, in delivery order. */
async function takeAll(app: Celery, queue: string, n: number) {
  const broker = await app.broker();
  const out: [string, string, unknown][] = [];
  while (out.length < n) {
    const got = await broker.take([queue], { max: n, signal: AbortSignal.timeout(5000) });
    if (got.length === 0) break;
    for (const d of got) {
      out.push([
        String(d.headers.id),
        String(d.headers.task),
        JSON.parse(decoder.decode(d.body))[0],
      ]);
    }
    await broker.ack(got);
  }
  return out;
}

/** Whether `queue` is empty: nothing to take within 300 ms. */
async function isEmpty(app: Celery, queue: string): Promise<boolean> {
  const broker = await app.broker();
  const got = await broker.take([queue], { max: 10, signal: AbortSignal.timeout(300) });
  await broker.ack(got);
  return got.length === 0;
}

function sendManyCases(
  label: string,
  ignore: boolean,
  open: () => Promise<{ broker: string; done(): Promise<void> }>,
) {
  Deno.test(
    { name: `${label}: delayMany() sends one message per call, in order`, ignore },
    async () => {
      const { broker, done } = await open();
      const app = new Celery({ broker });
      const q = `send-many-${crypto.randomUUID().slice(0, 8)}`;
      const add = app.task("tests.add", { queue: q }, (a: number, b: number) => a + b);
      try {
        const argsList: [number, number][] = Array.from({ length: 250 }, (_, i) => [i, i + 1]);
        const results = await add.delayMany(argsList);
        assert.equal(results.length, 250);
        assert.equal(new Set(results.map((r) => r.id)).size, 250);
        const taken = await takeAll(app, q, 250);
        assert.deepEqual(
          taken,
          results.map((r, i) => [r.id, "tests.add", argsList[i]]),
        );
      } finally {
        await app.close();
        await done();
      }
    },
  );

  Deno.test(
    { name: `${label}: sendMany() routes each call to its own queue`, ignore },
    async () => {
      const { broker, done } = await open();
      const app = new Celery({ broker });
      const q1 = `send-many-a-${crypto.randomUUID().slice(0, 8)}`;
      const q2 = `send-many-b-${crypto.randomUUID().slice(0, 8)}`;
      try {
        const [a, b, c] = await app.sendMany([
          { name: "tests.x", args: [1], options: { queue: q1 } },
          { name: "tests.y", args: [2], options: { queue: q2 } },
          { name: "tests.z", options: { queue: q1, taskId: "fixed-id" } },
        ]);
        assert.equal(c.id, "fixed-id");
        assert.deepEqual(await takeAll(app, q1, 2), [[a.id, "tests.x", [1]], [
          "fixed-id",
          "tests.z",
          [],
        ]]);
        assert.deepEqual(await takeAll(app, q2, 1), [[b.id, "tests.y", [2]]]);
        assert.deepEqual(await app.sendMany([]), []);
      } finally {
        await app.close();
        await done();
      }
    },
  );

  Deno.test(
    { name: `${label}: an aborted signal sends nothing and rejects with its reason`, ignore },
    async () => {
      const { broker, done } = await open();
      const app = new Celery({ broker });
      const q = `send-many-abort-${crypto.randomUUID().slice(0, 8)}`;
      const add = app.task("tests.add", { queue: q }, (a: number, b: number) => a + b);
      try {
        await add.delay(0, 0); // connected and declared: the batch's own sends are what count
        await takeAll(app, q, 1);
        const reason = new Error("stop");
        await assert.rejects(
          add.delayMany([[1, 2], [3, 4]], { signal: AbortSignal.abort(reason) }),
          (err) => err === reason,
        );
        // Aborted while the batch is encoded (before anything is written).
        const controller = new AbortController();
        const sending = app.sendMany([{ name: "tests.add", args: [5, 6], options: { queue: q } }], {
          signal: controller.signal,
        });
        controller.abort(reason);
        await assert.rejects(sending, (err) => err === reason);
        assert.ok(await isEmpty(app, q));
      } finally {
        await app.close();
        await done();
      }
    },
  );
}

sendManyCases(
  "kv",
  false,
  () => Promise.resolve({ broker: "kv://:memory:", done: async () => {} }),
);

sendManyCases("redis", WITHOUT_REDIS, () => {
  const prefix = uniquePrefix("sendmany");
  return Promise.resolve({
    broker: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`,
    done: async () => void await deleteKeys(prefix),
  });
});

sendManyCases("amqp", WITHOUT_RABBITMQ, async () => {
  const vhost = await createVhost("sendmany");
  return { broker: vhost.url(), done: () => vhost.remove() };
});

Deno.test("delayMany() refuses a shared taskId", () => {
  const app = new Celery({ broker: "kv://:memory:" });
  const t = app.remoteTask<[number]>("tests.t");
  assert.throws(() => t.delayMany([[1], [2]], { taskId: "same" }), {
    name: "TypeError",
    message: /cannot share one taskId/,
  });
});

Deno.test({
  name: "redis: delayMany() pushes a queue's messages with one variadic LPUSH",
  ignore: WITHOUT_REDIS,
}, async () => {
  // A private server: on the shared one, other test files' commands reach MONITOR too, and
  // one arriving before ioredis has switched the connection to monitor mode breaks it.
  const server = await PrivateRedis.start();
  const prefix = uniquePrefix("sendmany-wire");
  const app = new Celery({
    broker: `${server.url}?global_keyprefix=${encodeURIComponent(prefix)}`,
  });
  const q = `send-many-${crypto.randomUUID().slice(0, 8)}`;
  const monitor = await rawRedis(server.url);
  const r = await rawRedis(server.url);
  const pushes: string[][] = [];
  try {
    const t = app.remoteTask<[number]>("tests.t", { queue: q });
    await t.delay(0); // connects and declares the queue before the monitor starts
    const m = await monitor.monitor();
    m.on("monitor", (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === "lpush" && args[1] === `${prefix}${q}`) pushes.push(args);
    });
    await t.delayMany([[1], [2], [3]]);
    await new Promise((ok) => setTimeout(ok, 200));
    m.disconnect();
    assert.equal(pushes.length, 1);
    assert.equal(pushes[0].length, 2 + 3);
    assert.equal(await r.llen(`${prefix}${q}`), 4);
  } finally {
    await app.close();
    monitor.disconnect();
    r.disconnect();
    await server.close();
  }
});

Deno.test("kv: a signal aborted mid-batch stops the messages not yet written", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  const q1 = `send-many-a-${crypto.randomUUID().slice(0, 8)}`;
  const q2 = `send-many-b-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const broker = await app.broker();
    const controller = new AbortController();
    const publish = broker.publish.bind(broker);
    // The first message written aborts the batch: the first of each queue goes alone.
    broker.publish = (message, target) => {
      controller.abort(new Error("enough"));
      return publish(message, target);
    };
    const calls = [q1, q2, q1, q2].map((queue, i) => ({
      name: "tests.t",
      args: [i],
      options: { queue },
    }));
    const err = await app.sendMany(calls, { signal: controller.signal }).then(
      () => assert.fail("resolved"),
      (e) => e,
    );
    assert.ok(err instanceof BatchSendError);
    assert.equal(err.code, "BATCH_SEND_PARTIAL");
    assert.equal((err.cause as Error).message, "enough");
    assert.equal(err.sent.length, 1);
    assert.equal(err.unsent.length, 3);
    assert.deepEqual(err.unknown, []);
    assert.match(err.message, /1 sent, 3 not sent/);
    broker.publish = publish;
    assert.deepEqual(await takeAll(app, q1, 1), [[err.sent[0], "tests.t", [0]]]);
    assert.ok(await isEmpty(app, q1));
    assert.ok(await isEmpty(app, q2));
  } finally {
    await app.close();
  }
});

Deno.test({
  name: "redis: a batch some of whose LPUSHes Redis refuses tells the ids sent and not sent",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("sendmany-fail");
  const app = new Celery({ broker: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}` });
  const r = await rawRedis(REDIS_URL);
  const q1 = `send-many-a-${crypto.randomUUID().slice(0, 8)}`;
  const q2 = `send-many-b-${crypto.randomUUID().slice(0, 8)}`;
  try {
    // q2's list is a string: its LPUSH gets WRONGTYPE, q1's goes through (same pipeline).
    await r.set(`${prefix}${q2}`, "not a list");
    const calls = [q1, q2, q1, q2, q1].map((queue, i) => ({
      name: "tests.t",
      args: [i],
      options: { queue },
    }));
    const err = await app.sendMany(calls).then(() => assert.fail("resolved"), (e) => e);
    assert.ok(err instanceof BatchSendError, String(err));
    assert.match(String((err.cause as Error).message), /WRONGTYPE/);
    const taken = await takeAll(app, q1, 3);
    assert.deepEqual(taken.map((t) => t[0]), err.sent);
    assert.deepEqual(taken.map((t) => t[2]), [[0], [2], [4]]);
    assert.equal(err.unsent.length, 2);
    assert.deepEqual(err.unknown, []);
    assert.equal(await r.type(`${prefix}${q2}`), "string");
  } finally {
    await app.close();
    r.disconnect();
    await deleteKeys(prefix);
  }
});
