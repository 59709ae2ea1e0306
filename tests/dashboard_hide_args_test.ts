/**
 * `--hide-args` on the worker page: the active, reserved and scheduled
 * tasks of the inspect replies (as a Celery 5.2.6 worker and Celeriac
 * send them) show their args and kwargs masked, as the task pages do.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard, type DashboardEvent, type Inspector } from "../dashboard.ts";

const request = (id: string) => ({
  id,
  name: "tasks.charge",
  args: ["4111 1111 1111 1111"],
  kwargs: { cvv: "123" },
  type: "tasks.charge",
  hostname: "w@h",
  delivery_info: { exchange: "", routing_key: "celery", priority: 0, redelivered: false },
});

const inspector: Inspector = (command) => {
  const replies: Record<string, unknown> = {
    active: [request("a1")],
    reserved: [request("r1")],
    scheduled: [{ eta: "2026-01-01T00:00:00+00:00", priority: 6, request: request("s1") }],
    registered: ["tasks.charge"],
    stats: { pool: { "max-concurrency": 1 } },
  };
  return Promise.resolve({ "w@h": replies[command] });
};

Deno.test("dashboard --hide-args: inspect replies on the worker page are masked", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const online: DashboardEvent = {
    type: "worker-online",
    hostname: "w@h",
    timestamp: Date.now() / 1000,
    freq: 2,
  };
  const d = new Dashboard({
    app,
    port: 0,
    events: async function* () {
      yield online;
    },
    enableEvents: false,
    inspector,
    hideArgs: true,
  });
  const { url } = await d.start();
  try {
    for (let i = 0; i < 200 && !d.model.workers.get("w@h"); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const text = await (await fetch(`${url}/api/workers/w%40h`)).text();
    assert.doesNotMatch(text, /4111|cvv/);
    const { inspect } = JSON.parse(text);
    assert.deepEqual(
      [inspect.active[0], inspect.reserved[0], inspect.scheduled[0].request].map((r) => [
        r.id,
        r.args,
        r.kwargs,
      ]),
      [["a1", "•••", "•••"], ["r1", "•••", "•••"], ["s1", "•••", "•••"]],
    );
    assert.deepEqual(inspect.registered, ["tasks.charge"]);
  } finally {
    await d.stop();
    await app.close();
  }
});
