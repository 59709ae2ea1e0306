// deno-lint-ignore-file no-console
/**
 * A HEAD request to the dashboard (uptime checks send them) makes Deno print
 * no "request.signal aborts on successful responses (legacy behavior)"
 * warning: HEAD was answered through `new Request(req, …)`, which reads the
 * served request's signal, and Deno then warned once per process.
 */

import assert from "node:assert/strict";
import { memoryDashboard } from "./helpers/dashboard.ts";

Deno.test("dashboard: a served HEAD request leaves Deno's legacy request.signal warning unprinted", async () => {
  const { app, dashboard: d, url } = await memoryDashboard(async function* () {});
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => void warned.push(args.map(String).join(" "));
  try {
    for (const path of ["/", "/api/overview", "/metrics"]) {
      const head = await fetch(url + path, { method: "HEAD" });
      await head.body?.cancel();
      assert.equal(head.status, 200, `HEAD ${path}`);
    }
  } finally {
    console.warn = warn;
    await d.stop();
    await app.close();
  }
  assert.deepEqual(warned.filter((w) => w.includes("request.signal")), []);
});
