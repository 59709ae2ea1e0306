/**
 * A broker that drops while a worker starts (after it connected, before it
 * is ready: Redis restarted while a fleet of workers starts) is waited for,
 * as every later step waits for it, instead of failing the start.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import type { Broker } from "../protocol.ts";

/** Make `broker`'s `name` fail `times` times as an unreachable server does, then work. */
function failFirst<K extends "declareQueue" | "listRevoked" | "subscribe">(
  broker: Broker,
  name: K,
  times: number,
): { calls: number } {
  const real = (broker[name] as (...a: unknown[]) => Promise<unknown>).bind(broker);
  const seen = { calls: 0 };
  (broker as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
    seen.calls++;
    if (seen.calls <= times) {
      return Promise.reject(
        new BrokerConnectionError("redis://127.0.0.1:6379/0", new Error("connect ECONNREFUSED")),
      );
    }
    return real(...args);
  };
  return seen;
}

Deno.test("worker start-up: declaring queues, reading revoked ids and remote control wait for a broker that dropped", async () => {
  // worker.start() rejected with the BrokerConnectionError of the first failed step, and the
  // worker command exited with 'error: Cannot connect to redis://...' (seen with three workers
  // starting while their private redis-server was SIGKILLed and restarted 3 s later).
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  app.task("t.add", (a: number, b: number) => a + b);
  const broker = await app.broker();
  const declares = failFirst(broker, "declareQueue", 2);
  const revoked = failFirst(broker, "listRevoked", 2);
  const subscribes = failFirst(broker, "subscribe", 1);
  const { Worker } = await import("../worker.ts");
  const worker = new Worker({ app, pool: "inline", hostname: "startup-outage@%h" });
  try {
    await worker.start();
    assert.equal(declares.calls, 3);
    assert.equal(revoked.calls, 3);
    assert.ok(subscribes.calls >= 2);
    assert.equal(await (await app.sendTask<number>("t.add", [2, 3])).get({ timeout: 10_000 }), 5);
  } finally {
    await worker.stop();
    await app.close();
  }
});

Deno.test("worker start-up: a broker that refuses for good (not transient) still fails the start", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const broker = await app.broker();
  (broker as unknown as Record<string, unknown>).declareQueue = () =>
    Promise.reject(
      new BrokerConnectionError("redis://127.0.0.1:6379/0", new Error("WRONGPASS"), {
        reason: "the password is wrong",
        transient: false,
      }),
    );
  const { Worker } = await import("../worker.ts");
  const worker = new Worker({ app, pool: "inline", hostname: "startup-refused@%h" });
  try {
    await assert.rejects(worker.start(), /the password is wrong/);
  } finally {
    await worker.stop();
    await app.close();
  }
});
