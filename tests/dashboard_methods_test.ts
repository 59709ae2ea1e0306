/**
 * HTTP methods on the dashboard: a 405 names what the path takes in `Allow`
 * (RFC 9110 §15.5.6 requires it); HEAD is answered as GET without the body
 * where there is a GET (uptime checks send HEAD); GET on an action path is
 * a 405 (Allow: POST), not a 404 that says there is no such path.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard } from "../dashboard.ts";

Deno.test("dashboard: 405 with Allow, HEAD as GET without a body, GET on an action 405", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const d = new Dashboard({
    app,
    port: 0,
    events: async function* () {},
    enableEvents: false,
    inspector: null,
  });
  const { url } = await d.start();
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
