/**
 * The dashboard's "Retry (send again)" sends a failed task back to the queue
 * it came from. Celery's task events do not name the queue (only the
 * client's `task-sent`, off by default, does), so the dashboard takes the
 * queue the worker that ran it consumes (`inspect active_queues`), and asks
 * the operator to choose when that worker consumes several.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard, type DashboardEvent, parsePyLiteral } from "../dashboard.ts";

const now = () => Date.now() / 1000;

async function withFailed(
  fn: (url: string, d: Dashboard, app: Celery, h: Record<string, string>) => Promise<void>,
  args = "(2, 3)",
): Promise<void> {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const events: DashboardEvent[] = [
    { type: "worker-online", hostname: "w@h", timestamp: now(), freq: 2 },
    {
      type: "task-received",
      hostname: "w@h",
      timestamp: now(),
      uuid: "f1",
      name: "tasks.add",
      args,
      kwargs: "{}",
    },
    { type: "task-failed", hostname: "w@h", timestamp: now(), uuid: "f1", exception: "E()" },
  ];
  const d = new Dashboard({
    app,
    port: 0,
    events: async function* () {
      yield events;
    },
    enableEvents: false,
    inspector: null,
  });
  const { url } = await d.start();
  try {
    for (let i = 0; i < 200 && d.model.tasks.get("f1")?.state !== "FAILURE"; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const session = await (await fetch(`${url}/api/session`)).json();
    await fn(url, d, app, {
      "content-type": "application/json",
      "x-csrf-token": session.csrfToken,
    });
  } finally {
    await d.stop();
    await app.close();
  }
}

const retry = (url: string, h: Record<string, string>, body: unknown = {}) =>
  fetch(`${url}/api/tasks/f1/retry`, { method: "POST", headers: h, body: JSON.stringify(body) });

async function taken(app: Celery, queue: string): Promise<string[]> {
  const broker = await app.broker();
  const got = await broker.take([queue], { max: 10, signal: AbortSignal.timeout(500) })
    .catch(() => []);
  await broker.ack(got);
  return got.map((m) => m.headers.id as string);
}

Deno.test("dashboard retry: to the one queue its worker consumes, not the default queue", async () => {
  await withFailed(async (url, d, app, h) => {
    d.model.applyActiveQueues({ "w@h": [{ name: "math" }] });
    const detail = await (await fetch(`${url}/api/tasks/f1`)).json();
    assert.deepEqual(detail.queues, ["math"]);
    const r = await retry(url, h);
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.match(body.message, /to queue math/);
    assert.deepEqual(await taken(app, "math"), [body.id]);
    assert.equal(await app.queueDepth("celery"), 0);
  });
});

Deno.test("dashboard retry: a worker on several queues: refused until one is chosen", async () => {
  await withFailed(async (url, d, app, h) => {
    d.model.applyActiveQueues({ "w@h": [{ name: "a" }, { name: "b" }] });
    const refused = await retry(url, h);
    const error = (await refused.json()).error;
    assert.equal(refused.status, 409);
    assert.equal(error.code, "queue_unknown");
    assert.match(error.message, /w@h consumes a, b/);
    assert.equal(await app.queueDepth("celery"), 0);
    const r = await retry(url, h, { queue: "b" });
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.deepEqual(await taken(app, "b"), [body.id]);
    const bad = await retry(url, h, { queue: "" });
    assert.equal(bad.status, 400);
  });
});

Deno.test("dashboard retry: with its worker's queues unknown, the app's routing decides", async () => {
  await withFailed(async (url, _d, app, h) => {
    const r = await retry(url, h);
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.deepEqual(await taken(app, "celery"), [body.id]);
  });
});

Deno.test("dashboard retry: sends the very same numbers: big ints exact, whole floats floats", async () => {
  // 12345678901234567890 was sent as 1.2345678901234567e+19 (a float: the Python task then
  // failed with 'float' and 'str'), 10**30 as 1e+30 and 1.0 as 1.
  const args =
    "(12345678901234567890, 1.0, -0.0, 1e+300, 1000000000000000000000000000000, 0.5, -7)";
  await withFailed(async (url, _d, app, h) => {
    const r = await retry(url, h);
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    const broker = await app.broker();
    const [m] = await broker.take(["celery"], { max: 1, signal: AbortSignal.timeout(5000) });
    await broker.ack([m]);
    const text = new TextDecoder().decode(m.body);
    assert.ok(
      text.startsWith(
        "[[12345678901234567890, 1.0, -0.0, 1e+300, 1000000000000000000000000000000, 0.5, -7], {}, ",
      ),
      text,
    );
  }, args);
});

Deno.test("dashboard retry: args nested past 200 levels get 422, not a stack overflow's 500", async () => {
  const deep = (n: number) => `(${"[".repeat(n)}${"]".repeat(n)},)`;
  assert.equal(JSON.stringify(parsePyLiteral(deep(199))).length, 2 + 2 * 199);
  assert.throws(() => parsePyLiteral(deep(100_000)), /nested deeper than 200 levels/);
  // 1,000 deep fits the 2,048 characters of args the dashboard keeps (longer ones are cut)
  await withFailed(async (url, _d, app, h) => {
    const r = await retry(url, h);
    assert.equal(r.status, 422);
    const { error } = await r.json();
    assert.equal(error.code, "args_not_literal");
    assert.match(error.message, /nested deeper than 200 levels/);
    assert.deepEqual(await taken(app, "celery"), []);
  }, deep(1000));
});
