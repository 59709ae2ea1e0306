/**
 * The dashboard while its broker is down: the live stream and
 * `/api/overview` carry the broker's status (`reachable` / `unreachable`,
 * since when, why), from what the dashboard asks the broker itself every
 * 5 s; the UI shows a banner (role=alert) and every worker's state as
 * "unknown (broker unreachable)" rather than offline, and drops both once
 * the broker answers again. Before, the stream said nothing of the broker
 * and the UI showed the workers offline with no explanation. On a private
 * redis-server the test kills and restarts (never the shared one).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard, type DashboardEvent } from "../dashboard.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { nav, screenshots } from "./helpers/dashboard.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";

const shot = screenshots("dashboard_broker_status_test");

/** A worker's heartbeat every second, as long as the dashboard reads. */
async function* heartbeats(signal: AbortSignal): AsyncIterable<DashboardEvent> {
  while (!signal.aborted) {
    yield {
      type: "worker-heartbeat",
      hostname: "w1@h",
      timestamp: Date.now() / 1000,
      freq: 2,
      active: 0,
      sw_ident: "celeriac",
      sw_ver: "0.1.0",
    };
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** /api/overview's broker status. */
async function brokerStatus(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/api/overview`);
  assert.equal(res.status, 200);
  return (await res.json()).broker;
}

Deno.test({
  name: "dashboard: the broker's status is in the stream and the UI, workers unknown while down",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const redis = await PrivateRedis.start();
    const app = new Celery({ broker: redis.url, backend: "kv://:memory:" });
    const dashboard = new Dashboard({ app, port: 0, events: heartbeats, inspector: null });
    const { url } = await dashboard.start();
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(url);
      await page.getByTestId("workers-online").filter({ hasText: "1 / 1" }).waitFor();
      assert.equal((await brokerStatus(url)).state, "reachable");
      assert.equal(await page.getByTestId("broker-banner").count(), 0);

      const downAt = Date.now() / 1000;
      await redis.down();
      const banner = page.getByRole("alert").filter({ hasText: "Broker unreachable" });
      await banner.waitFor({ timeout: 30_000 });
      assert.match(await banner.textContent() ?? "", new RegExp(`127\\.0\\.0\\.1:${redis.port}`));
      await page.getByTestId("workers-online").filter({ hasText: "unknown" }).waitFor();
      const down = await brokerStatus(url);
      assert.equal(down.state, "unreachable");
      assert.ok(typeof down.since === "number" && down.since >= downAt - 1, JSON.stringify(down));
      assert.match(String(down.error), new RegExp(`127\\.0\\.0\\.1:${redis.port}`));
      // The live stream carries it too.
      const stream = await fetch(`${url}/api/stream`);
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes('"broker"')) text += (await reader.read()).value ?? "";
      await reader.cancel();
      const message = JSON.parse(text.slice(text.indexOf("data: ") + 6).split("\n")[0]);
      assert.equal(message.overview.broker.state, "unreachable");
      await shot(page, "overview-down");

      await nav(page, "Workers");
      const row = page.locator('tr[data-worker="w1@h"]');
      await row.getByText("unknown (broker unreachable)").waitFor();
      assert.equal(await row.getByText("offline").count(), 0);
      await page.getByText("state unknown: the broker is unreachable").waitFor();
      await shot(page, "workers-down");

      await redis.up();
      await row.getByText("online", { exact: true }).waitFor({ timeout: 30_000 });
      await banner.waitFor({ state: "detached" });
      assert.equal((await brokerStatus(url)).state, "reachable");
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await dashboard.stop();
      await app.close();
      await redis.close();
    }
  },
});
