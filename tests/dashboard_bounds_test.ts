/**
 * What the dashboard keeps for names it sees stays bounded on a real server:
 * a client sending to ever new queues and task names grows neither the queue
 * list (whose depths each /metrics scrape and /api/queues ask of the broker,
 * a few at a time) nor the /metrics series without end; the most recently
 * seen stay.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard, type DashboardEvent } from "../dashboard.ts";

const SENT = 12_000;

Deno.test("dashboard: queues seen and metric series are capped, depths asked a few at a time", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  let inFlight = 0, maxInFlight = 0;
  (app as { queueDepth: (q?: string) => Promise<number> }).queueDepth = async () => {
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    await new Promise((r) => setTimeout(r, 0));
    inFlight--;
    return 0;
  };
  const at = Date.now() / 1000;
  const events: DashboardEvent[] = Array.from({ length: SENT }, (_, i) => ({
    type: "task-sent",
    hostname: "client@h",
    timestamp: at,
    uuid: `u${i}`,
    name: `n${i}`,
    queue: `q${i}`,
    args: "()",
    kwargs: "{}",
  }));
  const d = new Dashboard({
    app,
    port: 0,
    events: async function* (signal) {
      yield events;
      await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
    },
    enableEvents: false,
    inspector: null,
  });
  const { url } = await d.start();
  try {
    for (let i = 0; i < 500 && d.model.eventCount < SENT; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(d.model.eventCount, SENT);
    const { queues } = await (await fetch(`${url}/api/queues`)).json();
    const names = new Set(queues.map((q: { name: string }) => q.name));
    assert.ok(names.size <= 1001, `${names.size} queues listed`);
    assert.ok(names.has(`q${SENT - 1}`) && names.has("celery") && !names.has("q0"));
    assert.ok(maxInFlight <= 8, `${maxInFlight} depths asked at once`);

    const text = await (await fetch(`${url}/metrics`)).text();
    const series = text.split("\n").filter((l) => l.startsWith("flower_events_total{"));
    assert.ok(series.length <= 10_000, `${series.length} flower_events_total series`);
    assert.ok(text.includes(`task="n${SENT - 1}"`) && !text.includes('task="n0"'));
    const depths = text.split("\n").filter((l) => l.startsWith("celeriac_queue_length{"));
    assert.ok(depths.length <= 1001, `${depths.length} queue depths`);
  } finally {
    await d.stop();
    await app.close();
  }
});
