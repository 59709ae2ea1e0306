/**
 * HTTP methods on the dashboard: a 405 names what the path takes in `Allow`
 * (RFC 9110 §15.5.6 requires it); HEAD is answered as GET without the body
 * where there is a GET (uptime checks send HEAD); GET on an action path is
 * a 405 (Allow: POST), not a 404 that says there is no such path.
 */

import assert from "node:assert/strict";
import { memoryDashboard } from "./helpers/dashboard.ts";

Deno.test("dashboard: 405 with Allow, HEAD as GET without a body, GET on an action 405", async () => {
  const { app, dashboard: d, url } = await memoryDashboard(async function* () {});
  try {
    const cases: [string, string, number, string | null][] = [
      ["PUT", "/api/overview", 405, "GET, HEAD"],
      ["POST", "/api/overview", 405, "GET, HEAD"],
      ["GET", "/api/tasks/x/revoke", 405, "POST"],
      ["DELETE", "/api/workers/w@h/shutdown", 405, "POST"],
      ["POST", "/metrics", 405, "GET, HEAD"],
      ["POST", "/", 405, "GET, HEAD"],
      ["PUT", "/api/nothing", 404, null],
    ];
    for (const [method, path, status, allow] of cases) {
      const r = await fetch(url + path, { method });
      await r.body?.cancel();
      assert.equal(r.status, status, `${method} ${path}`);
      assert.equal(r.headers.get("allow"), allow, `${method} ${path}`);
    }
    for (const path of ["/", "/api/overview", "/metrics"]) {
      const [got, head] = [await fetch(url + path), await fetch(url + path, { method: "HEAD" })];
      await got.body?.cancel();
      assert.equal(head.status, 200, `HEAD ${path}`);
      assert.equal(head.headers.get("content-type"), got.headers.get("content-type"), path);
      assert.equal(await head.text(), "", `HEAD ${path} has no body`);
    }
    const head = await fetch(`${url}/api/tasks/x/revoke`, { method: "HEAD" });
    assert.equal(head.status, 405);
    assert.equal(head.headers.get("allow"), "POST");
  } finally {
    await d.stop();
    await app.close();
  }
});

Deno.test("dashboard: HEAD /api/stream opens no stream, HEAD /api/parked scans nothing", async () => {
  // HEAD was answered by running GET: a live stream opened (task changes recorded), a parked scan.
  const { app, dashboard: d } = await memoryDashboard(async function* () {});
  try {
    const broker = await app.broker();
    let scans = 0;
    const list = broker.listParked.bind(broker);
    broker.listParked = (o) => (scans++, list(o));
    d.model.recordTaskChanges = false;
    const head = (path: string) =>
      d.handle(new Request(`http://127.0.0.1:5555${path}`, { method: "HEAD" }));
    const [stream, parked] = [await head("/api/stream"), await head("/api/parked")];
    assert.equal(stream.status, 200);
    assert.equal(stream.headers.get("content-type"), "text/event-stream");
    assert.equal(parked.status, 200);
    assert.equal(parked.headers.get("content-type"), "application/json");
    assert.equal(d.model.recordTaskChanges, false, "HEAD /api/stream opened a stream");
    assert.equal(scans, 0, "HEAD /api/parked scanned the parked messages");
    const got = await d.handle(new Request("http://127.0.0.1:5555/api/parked"));
    assert.equal(got.status, 200, await got.text());
    assert.equal(scans, 1);
  } finally {
    await d.stop();
    await app.close();
  }
});
