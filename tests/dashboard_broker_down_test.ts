/**
 * The dashboard on a broker nobody answers: `GET /api/queues` (which asks
 * the broker for each queue's depth) answers 503 `broker_unreachable` with
 * `Retry-After`, saying the broker cannot be reached, not a 500 "Internal
 * error".
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard } from "../dashboard.ts";

Deno.test({
  name: "dashboard: a broker that cannot be reached is a 503 broker_unreachable on /api/queues",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // a port just freed: nothing listens there
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (free.addr as Deno.NetAddr).port;
    free.close();
    const broker = `redis://127.0.0.1:${port}/0`;
    const app = new Celery({ broker, backend: "kv://:memory:" });
    const d = new Dashboard({
      app,
      port: 0,
      events: async function* () {},
      enableEvents: false,
      inspector: null,
      queues: ["bd_q"],
    });
    const { url } = await d.start();
    try {
      const res = await fetch(`${url}/api/queues`);
      const body = await res.json();
      assert.equal(res.status, 503, JSON.stringify(body));
      assert.equal(body.error.code, "broker_unreachable");
      assert.match(body.error.message, /^Broker unreachable: /);
      assert.ok(body.error.message.includes(`127.0.0.1:${port}`), body.error.message);
      assert.equal(res.headers.get("retry-after"), "5");
    } finally {
      await d.stop();
      await app.close();
    }
  },
});
