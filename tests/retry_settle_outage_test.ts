/**
 * Settling a retry through a broker outage: the retry publish rides it out
 * for `outageRetryLimit` as follow-up publishes do (it does not fail the
 * task once the publish retry policy is used up), and a retry that cannot
 * be published in time fails the task without parking a delivery that was
 * already acknowledged (early ack): only unacknowledged ones are parked.
 * A park is announced once it is written, and a lifecycle listener that
 * throws on it stops neither the park nor the batch's other retries.
 */

import assert from "node:assert/strict";
import type { ResultBackend, StoreEntry } from "../src/backend/port.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import type { Broker, Delivery, Rejection } from "../src/broker/port.ts";
import { Lifecycle } from "../src/worker/lifecycle.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { decodeTaskHeaders } from "../src/protocol/task_request.ts";
import { type DueRetry, settleRetries } from "../src/worker/retries.ts";

const down = () =>
  new BrokerConnectionError("redis://127.0.0.1:1/0", new Error("connect ECONNREFUSED"), {
    transient: true,
  });

function due(acked: boolean): DueRetry {
  const id = crypto.randomUUID();
  const message = encodeTaskMessage({
    task: "t.flaky",
    id,
    args: [1],
    kwargs: {},
    now: new Date(),
    origin: "test@host",
    replyTo: crypto.randomUUID(),
  });
  const delivery: Delivery = {
    ...message,
    queue: "q",
    deliveryTag: id,
    redelivered: false,
    exchange: "",
    routingKey: "q",
  };
  return {
    delivery,
    req: decodeTaskHeaders(delivery),
    acked,
    outcome: {
      seq: 1,
      ok: false,
      runtime: 0.01,
      retry: {
        args: [1],
        kwargs: {},
        retries: 1,
        eta: new Date(),
        when: "now",
        embed: { callbacks: null, errbacks: null, chain: null, chord: null },
      },
    },
  };
}

function fakes() {
  const rejected: Rejection[] = [];
  const acked: Delivery[] = [];
  const stored: StoreEntry[] = [];
  const broker = {
    reject: (r: readonly Rejection[]) => {
      rejected.push(...r);
      return Promise.resolve();
    },
    ack: (d: readonly Delivery[]) => {
      acked.push(...d);
      return Promise.resolve();
    },
  } as unknown as Broker;
  const backend = {
    store: (e: readonly StoreEntry[]) => {
      stored.push(...e);
      return Promise.resolve();
    },
  } as unknown as ResultBackend;
  return { broker, backend, rejected, acked, stored };
}

Deno.test("settleRetries: a broker blip longer than the publish retry policy is ridden out", async () => {
  const f = fakes();
  let tries = 0;
  const d = due(false);
  await settleRetries([d], {
    broker: f.broker,
    backend: f.backend,
    origin: "test@host",
    outageRetryLimit: 30,
    // Down for about 1 s: longer than the publish retry policy (3 retries, 0.2 s apart).
    publish: () => ++tries <= 4 ? Promise.reject(down()) : Promise.resolve(),
  });
  // Before: FAILURE stored and the message parked after the first failed publish.
  assert.deepEqual(f.rejected, [], "nothing parked");
  assert.equal(f.stored.filter((e) => e.status === "FAILURE").length, 0, "no FAILURE");
  assert.deepEqual(f.acked, [d.delivery], "the original acknowledged once its retry is in");
  assert.equal(tries, 5);
});

Deno.test("settleRetries: a retry that cannot be published parks only unacknowledged deliveries", async () => {
  const f = fakes();
  const late = due(false);
  const early = due(true);
  await settleRetries([late, early], {
    broker: f.broker,
    backend: f.backend,
    origin: "test@host",
    outageRetryLimit: 0.3,
    publish: () => Promise.reject(down()),
  });
  // Before: the acknowledged delivery was parked as well.
  assert.deepEqual(f.rejected.map((r) => r.delivery), [late.delivery], "only the unacked parked");
  const failures = f.stored.filter((e) => e.status === "FAILURE").map((e) => e.taskId).sort();
  assert.deepEqual(failures, [late.req.id, early.req.id].sort(), "both stored as FAILURE");
  assert.deepEqual(f.acked, [], "nothing acknowledged");
});

Deno.test("settleRetries: a listener throwing on a park's announcement stops neither the park nor the other retries", async () => {
  const f = fakes();
  const lost = due(false);
  const next = due(false);
  const published: string[] = [];
  const lifecycle = new Lifecycle();
  const announced: string[] = [];
  lifecycle.subscribe((e) => {
    if (e.type !== "rejected") return;
    announced.push(`${e.taskId} parked before: ${f.rejected.some((r) => r.taskId === e.taskId)}`);
    throw new TypeError("listener broke");
  });
  await settleRetries([lost, next], {
    broker: f.broker,
    backend: f.backend,
    origin: "test@host",
    outageRetryLimit: 0,
    lifecycle,
    publish: (m) => {
      if (m.headers.id === lost.req.id) return Promise.reject(new Error("exchange gone"));
      published.push(m.headers.id as string);
      return Promise.resolve();
    },
  });
  // Before: the listener's error ended settleRetries at the first park, announced before it was
  // written: no FAILURE, nothing parked, the next retry neither published nor acknowledged.
  assert.deepEqual(
    announced,
    [`${lost.req.id} parked before: true`],
    "announced once, once parked",
  );
  assert.deepEqual(f.rejected.map((r) => r.delivery), [lost.delivery]);
  const failures = f.stored.filter((e) => e.status === "FAILURE").map((e) => e.taskId);
  assert.deepEqual(failures, [lost.req.id]);
  assert.deepEqual(published, [next.req.id]);
  assert.deepEqual(f.acked, [next.delivery]);
});

Deno.test("settleRetries: only the parks the broker wrote are announced", async () => {
  const f = fakes();
  const gone = due(false);
  const kept = due(false);
  // gone's connection is lost (as on RabbitMQ): the broker leaves it out, it comes back.
  const broker = {
    ...f.broker,
    reject: (r: readonly Rejection[]) =>
      Promise.resolve(r.filter((x) => x.delivery !== gone.delivery)),
  } as unknown as Broker;
  const lifecycle = new Lifecycle();
  const announced: string[] = [];
  lifecycle.subscribe((e) => e.type === "rejected" && announced.push(e.taskId!));
  await settleRetries([gone, kept], {
    broker,
    backend: f.backend,
    origin: "test@host",
    outageRetryLimit: 0,
    lifecycle,
    publish: () => Promise.reject(new Error("exchange gone")),
  });
  assert.deepEqual(announced, [kept.req.id]);
});
