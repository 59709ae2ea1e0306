/**
 * app.broker({ signal }) / app.resultBackend({ signal }) once the open
 * finished: a signal aborted after that (a timeout, the CLI's start-up
 * signal, which it aborts as soon as it connected) leaves the connection
 * alone. On RabbitMQ the connect's signal reaches the socket (net.connect
 * destroys it on abort); it must stop doing so once the connect ended.
 * Before it finished: a caller that joined the open (without a signal, or
 * with one that did not abort) is not failed by the starter's abort.
 */

import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { Celery } from "../mod.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { REDIS_URL } from "./helpers/redis.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

Deno.test({
  name:
    "RabbitMQ broker and rpc:// backend: a signal aborted after the open leaves the connection up",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r) => records.push(r) },
    loggers: [
      { category: ["celeriac"], lowestLevel: "warning", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["mem"] },
    ],
  });
  const vhost = await createVhost("open-signal");
  const app = new Celery({ broker: vhost.url(), backend: "rpc://" });
  try {
    const opening = new AbortController();
    const broker = await app.broker({ signal: opening.signal });
    await app.resultBackend({ signal: opening.signal });
    opening.abort(new Error("the caller's signal, aborted after the open"));
    // A cut connection is seen within a few ms (the socket is destroyed at once).
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await broker.queueDepth("open-signal"), 0);
    const lost = records.filter((r) => String(r.rawMessage).includes("Lost the connection"));
    assert.deepEqual(lost.map((r) => r.properties), [], "no connection was lost");
  } finally {
    await app.close();
    await reset();
    await vhost.remove();
  }
});

Deno.test({
  name: "app.broker()/resultBackend() joined an open its starter aborts: the joiner opens anew",
  ignore: WITHOUT_REDIS,
}, async () => {
  const app = new Celery({ broker: REDIS_URL, backend: REDIS_URL });
  try {
    const starter = new AbortController();
    const reason = new Error("the starter gave up");
    const started = [
      app.broker({ signal: starter.signal }),
      app.resultBackend({ signal: starter.signal }),
    ]
      .map((p) => p.then(() => null, (e: unknown) => e));
    const joined = [app.broker(), app.resultBackend({ signal: AbortSignal.timeout(10_000) })]
      .map((p) => p.then((opened) => opened, (e: unknown) => e));
    starter.abort(reason);
    assert.deepEqual(await Promise.all(started), [reason, reason], "the starter's opens end");
    const [broker, backend] = await Promise.all(joined);
    assert.ok(!(broker instanceof Error), `the broker joiner failed: ${broker}`);
    assert.ok(!(backend instanceof Error), `the backend joiner failed: ${backend}`);
    assert.equal(await (await app.broker()).queueDepth(`open-signal-${crypto.randomUUID()}`), 0);
    assert.equal(await (await app.resultBackend()).get(crypto.randomUUID()), null);
  } finally {
    await app.close();
  }
});
