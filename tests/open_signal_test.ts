/**
 * app.broker({ signal }) / app.resultBackend({ signal }) once the open
 * finished: a signal aborted after that (a timeout, the CLI's start-up
 * signal, which it aborts as soon as it connected) leaves the connection
 * alone. On RabbitMQ the connect's signal reaches the socket (net.connect
 * destroys it on abort); it must stop doing so once the connect ended.
 */

import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { Celery } from "../mod.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

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
