/**
 * A `get()` that times out on rpc:// with nothing received says why a
 * result may never come: only the client that sent a task receives its
 * result, so a handle made from another client's task id waits in vain
 * (Celery hangs there too). A handle of a task this client sent says so.
 */

import assert from "node:assert/strict";
import { Celery, TimeoutError } from "../mod.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

const vhost = WITHOUT_RABBITMQ ? null : await createVhost("rpctimeout");
const brokerUrl = vhost?.url() ?? "";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `rpc timeout message: ${name}`, ignore: WITHOUT_RABBITMQ }, fn);

test("another client's task: the message says only the sending client receives rpc:// results", async () => {
  const queue = `rpctimeout-${crypto.randomUUID().slice(0, 8)}`;
  const sender = new Celery({ broker: brokerUrl, backend: "rpc://", defaultQueue: queue });
  const other = new Celery({ broker: brokerUrl, backend: "rpc://", defaultQueue: queue });
  try {
    const sent = await sender.sendTask("nobody.runs", []);
    const err = await other.asyncResult(sent.id).get({ timeout: 300 }).then(() => null, (e) => e);
    assert.ok(err instanceof TimeoutError, `rejected with ${err}`);
    assert.match(
      err.message,
      /no result reached this client on rpc:\/\/: only the client that sent a task receives its result, so a task sent by another client/,
    );
    const own = await sent.get({ timeout: 300 }).then(() => null, (e) => e);
    assert.ok(own instanceof TimeoutError, `rejected with ${own}`);
    assert.match(
      own.message,
      new RegExp(
        `only the client that sent a task receives its result \\(this one did\\): is a worker consuming queue "${queue}"\\?`,
      ),
    );
  } finally {
    await sender.close();
    await other.close();
  }
});

test("clean up the test vhost", async () => {
  await vhost!.remove();
});
