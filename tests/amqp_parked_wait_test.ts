/**
 * How long an AMQP listing or requeue of parked messages waits for
 * another process's scan lock: from when it is asked for (calls queued
 * in one broker give up together), to the full `parkedScanWait`, and
 * for this broker's own scan ahead of it (a link to RabbitMQ stalled under it).
 */

import assert from "node:assert/strict";
import amqp from "amqplib";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { SCAN_LOCK_QUEUE } from "../src/broker/amqp_scan_lock.ts";
import { BrokerConnectionError, ParkedScanBusyError } from "../src/broker/errors.ts";
import { createVhost, RABBITMQ_URL, type TestVhost } from "./helpers/rabbitmq.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

/** Run `fn` on a fresh vhost while another connection holds its scan lock. */
async function whileLocked(label: string, fn: (vhost: TestVhost) => Promise<void>): Promise<void> {
  const vhost = await createVhost(label);
  try {
    const holder = await amqp.connect(vhost.url());
    try {
      await (await holder.createChannel()).assertQueue(SCAN_LOCK_QUEUE, { exclusive: true });
      await fn(vhost);
    } finally {
      await holder.close();
    }
  } finally {
    await vhost.remove();
  }
}

Deno.test({
  name:
    "amqp parked wait: calls queued in one broker give up together, each parkedScanWait after it was made",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: each call's wait began when the one ahead of it gave up (rejected at ~0.64, 1.28, 1.92 s).
  await whileLocked("parked-wait", async (vhost) => {
    const broker = await openAmqpBroker(vhost.url(), { parkedScanWait: 1 });
    try {
      let timerFired = false;
      const timer = setTimeout(() => timerFired = true, 1500);
      const calls: Promise<unknown>[] = [
        broker.listParked(),
        broker.listParked(),
        broker.listParked(),
        broker.requeueParked(),
      ];
      const firedAtRejection: boolean[] = [];
      await Promise.all(calls.map((call, i) =>
        assert.rejects(call, (err) => {
          assert.ok(err instanceof ParkedScanBusyError, String(err));
          firedAtRejection[i] = timerFired;
          return true;
        })
      ));
      clearTimeout(timer);
      assert.deepEqual(
        firedAtRejection,
        [false, false, false, false],
        "every call rejected before a 1.5 s timer started with them fired",
      );
    } finally {
      await broker.close();
    }
  });
});

Deno.test({
  name: "amqp parked wait: a scan waits the whole parkedScanWait before it gives up",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: it gave up once the next pause would pass the deadline (~140 ms of a 200 ms wait).
  await whileLocked("parked-wait-full", async (vhost) => {
    const broker = await openAmqpBroker(vhost.url(), { parkedScanWait: 0.2 });
    try {
      const start = performance.now();
      await assert.rejects(broker.listParked(), ParkedScanBusyError);
      const waited = performance.now() - start;
      assert.ok(waited >= 200, `gave up after ${waited.toFixed(0)} ms of a 200 ms wait`);
    } finally {
      await broker.close();
    }
  });
});

Deno.test({
  name: "amqp parked wait: a listing the broker's close cuts short rejects as the broker closed",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: it rejected with amqplib's IllegalOperationError ("Connection closing").
  await whileLocked("parked-wait-close", async (vhost) => {
    const broker = await openAmqpBroker(vhost.url(), { parkedScanWait: 30 });
    const listing = broker.listParked().then(() => "listed", (err: unknown) => err);
    await new Promise((ok) => setTimeout(ok, 300)); // it waits for the other connection's lock
    await broker.close();
    const outcome = await listing;
    assert.ok(outcome instanceof BrokerConnectionError, String(outcome));
    assert.equal(outcome.code, "BROKER_CONNECTION");
    assert.equal(outcome.transient, false);
    assert.match(outcome.message, /this broker was closed/);
    for (const call of [broker.listParked(), broker.countParked(), broker.requeueParked()]) {
      await assert.rejects(call, (err) => err instanceof BrokerConnectionError && !err.transient);
    }
  });
});

Deno.test({
  name:
    "amqp parked wait: a call queued behind this broker's own scan gives up parkedScanWait after it was made",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: it waited for the scan ahead however long that took (here: until the link came back).
  const vhost = await createVhost("parked-wait-own");
  const server = new URL(RABBITMQ_URL);
  const proxy = TcpProxy.start({ hostname: server.hostname, port: Number(server.port || 5672) });
  const url = new URL(vhost.url());
  url.hostname = "127.0.0.1";
  url.port = String(proxy.port);
  const broker = await openAmqpBroker(url.href, { parkedScanWait: 0.3 });
  let fallback: ReturnType<typeof setTimeout> | undefined;
  try {
    assert.equal(await broker.countParked(), 0, "connected through the proxy");
    // The first requeue is under way, its requests to RabbitMQ unanswered while the link is held.
    proxy.hold();
    let firstSettled = false;
    const first = broker.requeueParked().finally(() => firstSettled = true);
    const second = broker.listParked();
    // So that a second call that waits for the first (the bug) does not wait forever.
    fallback = setTimeout(() => proxy.release(), 10_000);
    const outcome = await second.then(() => "listed", (err: unknown) => err);
    const firstStillRunning = !firstSettled;
    proxy.release();
    assert.equal(await first, 0, "the first requeue ends once its link is back");
    assert.ok(outcome instanceof ParkedScanBusyError, `second call: ${String(outcome)}`);
    assert.equal(outcome.code, "PARKED_SCAN_BUSY");
    assert.equal(outcome.heldBy, "this broker");
    assert.ok(firstStillRunning, "the second call gave up while the scan ahead of it still ran");
    assert.deepEqual(await broker.listParked(), [], "a call made after the scan ended runs");
  } finally {
    clearTimeout(fallback);
    proxy.release();
    await broker.close();
    await proxy.close();
    await vhost.remove();
  }
});
