/**
 * The rpc:// backend when its RabbitMQ connection is lost during a wait: the
 * auto-delete reply queue goes with the connection (a reply sent before it
 * is declared again is dropped), so the waits under way end with a
 * `ResultConnectionLostError` when the connection is lost, as Celery raises,
 * instead of waiting for good; a wait begun while it is down ends so once
 * consuming starts again. A test-owned TCP proxy cuts the connection.
 */

import assert from "node:assert/strict";
import { openRpcBackend } from "../src/backend/rpc.ts";
import { ResultConnectionLostError } from "../src/backend/rpc_errors.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { success } from "./helpers/rpc_entries.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("rpclost");
const brokerUrl = vhost?.url() ?? "";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `rpc connection lost: ${name}`, ignore: WITHOUT_RABBITMQ }, fn);

function viaProxy(proxy: TcpProxy): string {
  return `amqp://guest:guest@127.0.0.1:${proxy.port}${new URL(brokerUrl).pathname}`;
}

function startProxy(): TcpProxy {
  const target = new URL(brokerUrl);
  return TcpProxy.start({ hostname: target.hostname, port: Number(target.port || 5672) });
}

/** The wait's rejection (null when it resolved). */
function outcome(wait: Promise<unknown>): Promise<unknown> {
  return wait.then(() => null, (e: unknown) => e);
}

test("a wait under way rejects when the connection is lost and RabbitMQ stays out of reach", async () => {
  const proxy = startProxy();
  const client = await openRpcBackend("rpc://", {
    brokerUrl: viaProxy(proxy),
    backoff: { initialMs: 50, maxMs: 500 },
  });
  try {
    await client.prepare();
    // Its time limit is not what should end it: the lost connection should, long before.
    const waiting = outcome(client.waitFor(crypto.randomUUID(), AbortSignal.timeout(20_000)));
    // Every reconnect attempt is refused from now on, for the rest of the test.
    proxy.refuse();
    await proxy.cut();
    const err = await waiting;
    assert.ok(err instanceof ResultConnectionLostError, `rejected with ${err}`);
    assert.ok(err instanceof BrokerConnectionError);
    assert.equal(err.name, "ResultConnectionLostError");
    assert.equal(err.code, "RESULT_CONNECTION_LOST");
    assert.equal(err.replyQueue, client.replyQueue);
    assert.match(err.message, /^Lost the connection to amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+\//);
    assert.match(err.message, /while waiting for results: RabbitMQ deletes the auto-delete/);
    assert.match(err.message, new RegExp(`reply queue ${client.replyQueue} `));
    assert.equal(proxy.connections, 0, "RabbitMQ was out of reach when the wait rejected");
  } finally {
    await client.close();
    await proxy.close();
  }
});

test("a wait begun while the connection is down rejects once it is back; later waits work", async () => {
  const proxy = startProxy();
  const client = await openRpcBackend("rpc://", {
    brokerUrl: viaProxy(proxy),
    backoff: { initialMs: 50, maxMs: 500 },
  });
  const worker = await openRpcBackend("rpc://", { brokerUrl });
  try {
    await client.prepare();
    const first = outcome(client.waitFor(crypto.randomUUID(), AbortSignal.timeout(20_000)));
    proxy.refuse();
    await proxy.cut();
    assert.ok(await first instanceof ResultConnectionLostError, "the wait under way rejected");
    const accepted = proxy.accepted;
    const during = outcome(client.waitFor(crypto.randomUUID(), AbortSignal.timeout(20_000)));
    proxy.admit();
    const err = await during;
    assert.ok(err instanceof ResultConnectionLostError, `rejected with ${err}`);
    assert.equal(err.code, "RESULT_CONNECTION_LOST");
    assert.match(
      err.message,
      /^The connection to amqp:.* was down while waiting for results \(it is back now\): RabbitMQ deletes/,
    );
    assert.match(err.message, new RegExp(`reply queue ${client.replyQueue} `));
    assert.ok(proxy.accepted > accepted && proxy.connections === 1, "the backend reconnected");
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
