/**
 * The dashboard's /api/parked while another process holds RabbitMQ's
 * parked scan lock (a long requeue from the CLI): a 503 with
 * `Retry-After` and code PARKED_SCAN_BUSY, not a 500.
 */

import assert from "node:assert/strict";
import amqp from "amqplib";
import { Celery } from "../mod.ts";
import { Dashboard } from "../dashboard.ts";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { SCAN_LOCK_QUEUE } from "../src/broker/amqp_scan_lock.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";
import { feed } from "./helpers/event_feed.ts";

Deno.test({
  name:
    "dashboard parked busy: /api/parked answers 503 PARKED_SCAN_BUSY with Retry-After while another process scans",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // Before: 500 {"code": "internal", "message": "Internal error: ..."}, logged as an error.
  const vhost = await createVhost("dash-parked-busy");
  const holder = await amqp.connect(vhost.url());
  const broker = await openAmqpBroker(vhost.url(), { parkedScanWait: 0.2 });
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  // The app's own AMQP broker would wait the default 30 s.
  Object.defineProperty(app, "broker", { value: () => Promise.resolve(broker) });
  const d = new Dashboard({
    app,
    port: 0,
    events: feed().source,
    enableEvents: false,
    inspector: null,
  });
  try {
    await (await holder.createChannel()).assertQueue(SCAN_LOCK_QUEUE, { exclusive: true });
    const { url } = await d.start();
    const res = await fetch(`${url}/api/parked`);
    const body = await res.json();
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.equal(res.headers.get("retry-after"), "5");
    assert.equal(body.error.code, "PARKED_SCAN_BUSY");
    assert.match(body.error.message, /celeriac\.parked\.scan-lock/);
    await holder.close();
    const again = await fetch(`${url}/api/parked`);
    assert.equal(again.status, 200, "answered once the other process is done");
    assert.deepEqual((await again.json()).parked, []);
  } finally {
    await d.stop();
    await app.close();
    await broker.close();
    await holder.close().catch(() => {});
    await vhost.remove();
  }
});
