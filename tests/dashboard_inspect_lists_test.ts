/**
 * A worker's page (Debian's Chromium) lists its active, reserved and
 * scheduled tasks from inspect replies shaped as a Celery 5.2.6 worker
 * sends them (`Request.info()`: the decoded args list and kwargs dict; a
 * scheduled entry `{eta, priority, request}`): args and kwargs read as the
 * Python reprs the Tasks table shows, a scheduled task with its ETA in the
 * browser's time zone; active and reserved rows have Revoke and Terminate,
 * which work for a task the dashboard holds no event of. Screenshots go to
 * .scratch/screenshots/dashboard_inspect_lists_test/.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard, type DashboardEvent, type Inspector } from "../dashboard.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { screenshots } from "./helpers/dashboard.ts";

const shot = screenshots("dashboard_inspect_lists_test");

const request = (id: string, args: unknown[], kwargs: Record<string, unknown>) => ({
  id,
  name: "py.report",
  args,
  kwargs,
  type: "py.report",
  hostname: "celery@py",
  time_start: null,
  acknowledged: false,
  delivery_info: { exchange: "", routing_key: "celery", priority: 0, redelivered: false },
  worker_pid: null,
});

const ETA = "2026-12-05T13:55:59.894099+00:00";

const inspector: Inspector = (command) => {
  const replies: Record<string, unknown> = {
    active: [request("a1", [30], {})],
    reserved: [],
    scheduled: [{
      eta: ETA,
      priority: 6,
      request: request("s1", ["acme", null, true, [1.5]], { dry_run: false }),
    }],
    registered: ["py.report"],
    stats: { pool: { "max-concurrency": 1 } },
  };
  return Promise.resolve({ "celery@py": replies[command] });
};

Deno.test({
  name:
    "dashboard UI: a worker's inspected tasks show Python reprs of their args, scheduled ones their ETA",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
    const online: DashboardEvent = {
      type: "worker-online",
      hostname: "celery@py",
      timestamp: Date.now() / 1000,
      freq: 2,
    };
    const d = new Dashboard({
      app,
      port: 0,
      events: async function* (signal) {
        yield online;
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
      },
      enableEvents: false,
      inspector,
    });
    const { url } = await d.start();
    // Tokyo is UTC+9 all year
    const browser = await launchChromium({ timezoneId: "Asia/Tokyo" });
    try {
      const page = await browser.context.newPage();
      await page.goto(`${url}/#/workers/celery%40py`);
      // each list's table, found by its task's link
      const table = (id: string) =>
        page.locator("table", { has: page.getByRole("link", { name: id, exact: true }) });
      const scheduled = table("s1");
      await scheduled.waitFor();
      // the args as the Tasks table shows them, not the reply's JSON
      assert.equal(
        (await scheduled.locator("tbody td").last().textContent())?.trim(),
        "('acme', None, True, [1.5]) {'dry_run': False}",
      );
      assert.deepEqual(await scheduled.locator("thead th").allTextContents(), [
        ...["Task", "Id", "ETA", "Args"],
      ]);
      assert.deepEqual(
        (await scheduled.locator("tbody td").allTextContents()).map((t) => t.trim()),
        [
          "py.report",
          "s1",
          "2026-12-05 22:55:59.894",
          "('acme', None, True, [1.5]) {'dry_run': False}",
        ],
      );
      const active = table("a1");
      assert.deepEqual(
        (await active.locator("tbody td").allTextContents()).map((t) => t.trim()),
        ["py.report", "a1", "(30,)", "RevokeTerminate"],
      );
      await shot(page, "worker");
      // a1 is in no event the dashboard saw (as a long-running task the table evicted): its
      // row's Revoke still reaches the broker
      await page.getByRole("button", { name: "Revoke a1" }).click();
      await page.getByRole("status").filter({ hasText: "Revoke sent for a1" }).waitFor();
      const revoked = await (await app.broker()).listRevoked();
      assert.deepEqual(revoked.map((e) => e.id), ["a1"]);
      // the scheduled list has none
      assert.equal(await scheduled.getByRole("button").count(), 0);
    } finally {
      await browser.close();
      await d.stop();
      await app.close();
    }
  },
});
