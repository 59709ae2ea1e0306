/**
 * `app.close()` and a call's AbortSignal end a client's waits: an inspect
 * waiting for replies resolves with those so far when the app closes (Redis,
 * RabbitMQ); a send to a broker that accepts the connection and never
 * answers (a local listener that holds it) is ended by `delayMany()`'s
 * signal and by `app.close()`, with the connection closed (none leaked);
 * `rateLimit(..., { reply: true })` returns the workers' replies.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { RABBITMQ_URL } from "./helpers/rabbitmq.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";
import { redisAndKv, withWorker } from "./helpers/worker.ts";

/** What a race against {@link HUNG_MS} settles with when the waited promise did not. */
const HUNG = Symbol("hung");
/**
 * Far below the waits the calls were given (a 600 s inspect, a 600 s connect
 * timeout): settling before it means the close or the signal ended the wait.
 */
const HUNG_MS = 60_000;

/** `p`'s outcome, or {@link HUNG} when it did not settle within {@link HUNG_MS}. */
async function settled<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown } | typeof HUNG> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<typeof HUNG>((r) => timer = setTimeout(() => r(HUNG), HUNG_MS));
  try {
    return await Promise.race([p.then((value) => ({ value }), (error) => ({ error })), hung]);
  } finally {
    clearTimeout(timer);
  }
}

const prefix = uniquePrefix("close-abort");
const brokers = [
  {
    name: "redis",
    url: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`,
    ignore: WITHOUT_REDIS,
  },
  { name: "rabbitmq", url: RABBITMQ_URL, ignore: WITHOUT_RABBITMQ },
];

for (const b of brokers) {
  Deno.test({
    name: `close on ${b.name}: app.close() ends a waiting inspect with the replies so far`,
    ignore: b.ignore,
    fn: async () => {
      const app = new Celery({ broker: b.url, backend: null });
      await app.broker();
      const active = app.control.inspect({ timeout: 600, destination: ["nobody@close-abort"] })
        .active();
      await new Promise((r) => setTimeout(r, 300));
      await app.close();
      const outcome = await settled(active);
      assert.notEqual(outcome, HUNG, "the inspect still waits after app.close()");
      assert.deepEqual(outcome, { value: {} });
    },
  });
}

/** A TCP listener that accepts connections and never answers; `closedByPeer` counts EOFs read. */
function silentListener() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const ended: Promise<void>[] = [];
  let closedByPeer = 0;
  const accepting = (async () => {
    for await (const conn of listener) {
      held.push(conn);
      ended.push((async () => {
        const buf = new Uint8Array(4096);
        try {
          while ((await conn.read(buf)) !== null) { /* never answer */ }
          closedByPeer++;
        } catch { /* closed by us */ }
      })());
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    held,
    ended,
    get closedByPeer() {
      return closedByPeer;
    },
    async close() {
      listener.close();
      for (const c of held) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await Promise.all(ended);
      await accepting.catch(() => {});
    },
  };
}

const silentUrls: [string, (port: number) => string][] = [
  ["redis", (port) => `redis://127.0.0.1:${port}/0?socket_connect_timeout=600`],
  ["amqp", (port) => `amqp://guest:guest@127.0.0.1:${port}//?connect_timeout=600`],
];

for (const [name, url] of silentUrls) {
  Deno.test(`silent ${name} broker: delayMany()'s signal ends the open, the connection is closed`, async () => {
    const server = silentListener();
    const app = new Celery({ broker: url(server.port), backend: null });
    try {
      const add = app.remoteTask<[number, number], number>("t.add");
      const outcome = await settled(add.delayMany([[1, 2]], { signal: AbortSignal.timeout(300) }));
      assert.notEqual(outcome, HUNG, "delayMany() still waits after its signal aborted");
      const error = (outcome as { error?: Error }).error;
      assert.equal(error?.name, "TimeoutError", `expected the signal's reason, got ${error}`);
      await app.close();
      assert.ok(server.held.length >= 1, "the client never connected");
      assert.notEqual(await settled(Promise.all(server.ended)), HUNG, "a connection was left open");
      assert.equal(server.closedByPeer, server.held.length);
    } finally {
      await app.close();
      await server.close();
    }
  });

  Deno.test(`silent ${name} broker: app.close() ends a delay() waiting for the open`, async () => {
    const server = silentListener();
    const app = new Celery({ broker: url(server.port), backend: null });
    try {
      const sent = app.sendTask("t.add", [1, 2]);
      while (server.held.length === 0) await new Promise((r) => setTimeout(r, 20));
      const closed = app.close();
      const outcome = await settled(sent);
      assert.notEqual(outcome, HUNG, "delay() still waits after app.close()");
      const error = (outcome as { error?: Error }).error;
      assert.equal(error?.name, "AbortError", `expected the close's AbortError, got ${error}`);
      assert.match(error.message, /app\.close\(\)/);
      assert.notEqual(await settled(closed), HUNG, "app.close() waits for the open");
      assert.notEqual(await settled(Promise.all(server.ended)), HUNG, "a connection was left open");
      assert.equal(server.closedByPeer, server.held.length);
    } finally {
      await app.close();
      await server.close();
    }
  });
}

const { transports, cleanup } = await redisAndKv("close-abort-rl");
Deno.test({
  name: "rateLimit(..., { reply: true }) returns the workers' replies",
  ignore: WITHOUT_REDIS,
  fn: async () => {
    await withWorker(transports[0], { hostname: `close-abort-rl@%h` }, async (client, worker) => {
      const replies = await client.control.rateLimit("t.add", "5/s", {
        reply: true,
        timeout: 20,
        destination: [worker.hostname],
      });
      assert.deepEqual(replies, [{ [worker.hostname]: { ok: "new rate limit set successfully" } }]);
    });
  },
});

Deno.test("close-abort: clean up", async () => {
  await cleanup();
  if (!WITHOUT_REDIS) await deleteKeys(prefix);
});
