/**
 * The rpc:// backend when its RabbitMQ connection is lost during a wait: the
 * auto-delete reply queue goes with the connection (a reply sent before it
 * is declared again is dropped), so the waits under way end with a
 * `BrokerConnectionError` once consuming starts again, as Celery raises,
 * instead of waiting for good. A test-owned TCP proxy cuts the connection.
 */

import assert from "node:assert/strict";
import type { StoreEntry } from "../src/backend/port.ts";
import { openRpcBackend } from "../src/backend/rpc.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("rpclost");
const brokerUrl = vhost?.url() ?? "";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `rpc connection lost: ${name}`, ignore: WITHOUT_RABBITMQ }, fn);

function success(taskId: string, result: unknown, replyTo: string): StoreEntry {
  return {
    taskId,
    status: "SUCCESS",
    meta: encodeResultMeta({ taskId, status: "SUCCESS", result }),
    replyTo,
  };
}

test("a wait under way when the connection is cut rejects with BrokerConnectionError; later waits work", async () => {
  const target = new URL(brokerUrl);
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 5672) });
  const viaProxy = `amqp://guest:guest@127.0.0.1:${proxy.port}${target.pathname}`;
  const client = await openRpcBackend("rpc://", {
    brokerUrl: viaProxy,
    backoff: { initialMs: 50, maxMs: 500 },
  });
  const worker = await openRpcBackend("rpc://", { brokerUrl });
  try {
    await client.prepare();
    const lost = crypto.randomUUID();
    const waiting = client.waitFor(lost, AbortSignal.timeout(15_000));
    waiting.catch(() => {});
    await proxy.cut();
    const err = await waiting.then(() => null, (e: unknown) => e);
    assert.ok(err instanceof BrokerConnectionError, `rejected with ${err}`);
    assert.equal(err.code, "BROKER_CONNECTION");
    assert.match(err.message, /connection was lost while waiting/);
    assert.match(err.message, new RegExp(`reply queue ${client.replyQueue}`));
    assert.ok(proxy.accepted >= 2, "the backend reconnected");
    const next = crypto.randomUUID();
    const again = client.waitFor(next, AbortSignal.timeout(15_000));
    await worker.store([success(next, 7, client.replyQueue)]);
    assert.equal((await again).result, 7);
  } finally {
    await client.close();
    await worker.close();
    await proxy.close();
  }
});

test("clean up the test vhost", async () => {
  await vhost!.remove();
});
