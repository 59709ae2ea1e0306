import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
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
