/**
 * AmqpPublisher.withSession bounds its retries after a lost connection by a
 * deadline time compared on each retry, not by a timer: a publish holds no
 * timer (and its AbortSignal and closures) until `publishTimeout` passes.
 * Counted in timers made, not memory. No RabbitMQ: a fake connection.
 */

import assert from "node:assert/strict";
import type { AmqpConnection, AmqpSession } from "../src/broker/amqp_connection.ts";
import type { Declarations } from "../src/broker/amqp_declare.ts";
import { AmqpPublisher } from "../src/broker/amqp_publish.ts";

/** A connection whose sessions are made by `lost()` (each session's lost signal). */
function fakeConnection(lost: () => AbortSignal): AmqpConnection {
  return {
    session: () => Promise.resolve({ lost: lost() } as unknown as AmqpSession),
  } as unknown as AmqpConnection;
}

function publisher(connection: AmqpConnection, publishTimeoutMs: number): AmqpPublisher {
  return new AmqpPublisher({
    connection,
    declarations: {} as Declarations,
    publishTimeoutMs,
    closing: new AbortController().signal,
  });
}

/** Count the timers `AbortSignal.timeout` and `setTimeout` make while `fn` runs. */
async function timersMade(fn: () => Promise<void>): Promise<number> {
  const timeout = AbortSignal.timeout;
  const set = globalThis.setTimeout;
  let made = 0;
  AbortSignal.timeout = (ms: number) => {
    made++;
    return timeout(ms);
  };
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    made++;
    return set(...args);
  }) as typeof setTimeout;
  try {
    await fn();
  } finally {
    AbortSignal.timeout = timeout;
    globalThis.setTimeout = set;
  }
  return made;
}

Deno.test("amqp publish: an operation on a live connection makes no timer", async () => {
  const p = publisher(fakeConnection(() => new AbortController().signal), 30_000);
  const made = await timersMade(async () => {
    for (let i = 0; i < 1000; i++) assert.equal(await p.withSession(() => Promise.resolve(i)), i);
  });
  assert.equal(made, 0);
});

Deno.test("amqp publish: an operation whose connection was lost runs again on the next one, until the deadline", async () => {
  const lost = AbortSignal.abort();
  const p = publisher(fakeConnection(() => lost), 30_000);
  let runs = 0;
  const value = await p.withSession(() => {
    runs++;
    return runs < 3 ? Promise.reject(new Error("lost")) : Promise.resolve("done");
  });
  assert.deepEqual([value, runs], ["done", 3]);
  // Past its deadline (0 ms): the first failure after the loss is thrown.
  const late = publisher(fakeConnection(() => lost), 0.001);
  let lateRuns = 0;
  await assert.rejects(
    late.withSession(() => {
      lateRuns++;
      return Promise.reject(new Error("lost"));
    }),
    /lost/,
  );
  assert.equal(lateRuns, 1);
});

Deno.test("amqp publish: waiting for the next connection counts toward the deadline, and no rerun starts after it", async () => {
  const T = 200;
  let sessions = 0;
  const waits: (number | undefined)[] = [];
  // The first session is lost while its operation runs (0.9 T); the next one comes 0.95 T later,
  // unless the wait's timeout ends first (then it rejects, as AmqpConnection.session does).
  const connection = {
    session: async ({ timeoutMs }: { timeoutMs?: number } = {}) => {
      if (sessions++ > 0) {
        waits.push(timeoutMs);
        const wait = Math.min(0.95 * T, timeoutMs ?? Infinity);
        await new Promise((r) => setTimeout(r, wait));
        if (wait < 0.95 * T) throw new Error("no connection");
      }
      return { lost: AbortSignal.abort() } as unknown as AmqpSession;
    },
  } as unknown as AmqpConnection;
  const p = publisher(connection, T);
  let runs = 0;
  await assert.rejects(
    p.withSession(async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 0.9 * T));
      throw new Error("lost");
    }),
    /no connection|lost/,
  );
  assert.equal(runs, 1);
  // None when the first run ended past the deadline already (a slow machine).
  for (const w of waits) {
    assert.ok(w !== undefined && w < T, `waited up to ${w} ms for the next connection, of ${T}`);
  }
});
